package vn.sandbox.hospital;

import java.util.List;

/** GCS (loaiHs 61) and GBT (loaiHs 60): tags, code field and the field order of the portal's XSD. */
enum DocumentKind {
    GCS("61", "HSDLGCS", "GIAYCHUNGSINH", "MA_GCS", List.of(
            "MA_GCS", "MA_BN", "MA_CT", "SO_SERI", "MA_BHXH_NND", "MA_THE_NND", "HOTEN_NND", "NGAYSINH_NND",
            "MA_DANTOC_NND", "MA_QUOCTICH_NND", "LOAI_GIAYTO_NND", "SO_CCCD_NND", "NGAYCAP_CCCD_NND",
            "NOICAP_CCCD_NND", "NOI_CU_TRU_NND", "MATINH_CU_TRU", "MAHUYEN_CU_TRU", "MAXA_CU_TRU",
            "HO_TEN_CHA", "MA_THE_TAM", "TEN_CON", "GIOI_TINH_CON", "SO_CON", "LAN_SINH", "SO_CON_SONG",
            "CAN_NANG_CON", "NGAY_SINH_CON", "NOI_SINH_CON", "TINH_TRANG_CON", "SINHCON_PHAUTHUAT",
            "SINHCON_DUOI32TUAN", "GHI_CHU", "NGUOI_DO_DE", "NGUOI_GHI_PHIEU", "MA_TTDV", "THU_TRUONG_DVI",
            "NGAY_CT", "SO", "QUYEN_SO", "MA_BHXH_MTH", "MA_THE_MTH", "HOTEN_MTH", "NGAYSINH_MTH",
            "MA_DANTOC_MTH", "MA_QUOCTICH_MTH", "LOAI_GIAYTO_MTH", "SO_CCCD_MTH", "NGAYCAP_CCCD_MTH",
            "NOICAP_CCCD_MTH", "NOI_CU_TRU_MTH", "MATINH_CU_TRU_MTH", "MAXA_CU_TRU_MTH", "HO_TEN_CHA_MTH",
            "NGAYSINH_CHA_MTH", "MA_DANTOC_CHA_MTH", "NOI_CU_TRU_CHA_MTH", "MATINH_CU_TRU_CHA_MTH",
            "MAXA_CU_TRU_CHA_MTH", "LOAI_GIAYTO_CHA_MTH", "SO_CCCD_CHA_MTH", "NGAYCAP_CCCD_CHA_MTH",
            "NOICAP_CCCD_CHA_MTH", "NGAYSINH_CHA_NND", "MA_DANTOC_CHA_NND", "LOAI_GIAYTO_CHA_NND",
            "SO_CCCD_CHA_NND", "NGAYCAP_CCCD_CHA_NND", "NOICAP_CCCD_CHA_NND", "CAP_LAN_DAU")),
    GBT("60", "HSDLGBT", "GIAYBAOTU", "MA_GBT", List.of(
            "MA_GBT", "MA_BN", "MA_HSBA", "HO_TEN", "NGAY_SINH", "GIOI_TINH", "MA_THE", "MA_DANTOC",
            "MA_QUOCTICH", "DCHI_THUONGTRU", "MATINH_THUONGTRU", "MAHUYEN_THUONGTRU", "MAXA_THUONGTRU",
            "DCHI_HIENTAI", "MATINH_HIENTAI", "MAHUYEN_HIENTAI", "MAXA_HIENTAI", "LOAI_GIAYTO", "SO_GIAYTO",
            "NGAY_CAP", "NOI_CAP", "NGAYGIO_VV", "NGAY_TV", "TINH_TRANG_TV", "NGUYENNHAN_TV",
            "NGUOI_GHIGIAY", "NGUOI_THANTHICH", "TTRUONG_DVI", "SO_BAOTU", "QUYEN_SO", "NGAY_CAPGIAYBT",
            "SO_BAOTU_BD", "QUYEN_SO_BD", "MACSKCB", "DIACHI_CSKCB", "MA_BHXH", "BENH_ICD10_ID",
            "BENH_ICD10_TEN"));

    final String loaiHs, rootTag, dataTag, codeField;
    final List<String> fields;

    DocumentKind(String loaiHs, String rootTag, String dataTag, String codeField, List<String> fields) {
        this.loaiHs = loaiHs;
        this.rootTag = rootTag;
        this.dataTag = dataTag;
        this.codeField = codeField;
        this.fields = fields;
    }
}
