// The trigger order (conformance/trigger.schema.json) and the unsigned HSDLGCS / HSDLGBT it becomes.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.Serialization;
using System.Runtime.Serialization.Json;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml;

namespace HospitalClient
{
    /// <summary>One issue order, exactly as the harness (or the hospital's own front end) sends it.</summary>
    [DataContract]
    public sealed class TriggerOrder
    {
        [DataMember(Name = "request_id", IsRequired = true)] public string RequestId;
        [DataMember(Name = "type", IsRequired = true)] public string Type;
        [DataMember(Name = "facility", IsRequired = true)] public string Facility;
        [DataMember(Name = "issued_at", IsRequired = true)] public string IssuedAt;
        [DataMember(Name = "data", IsRequired = true)] public Dictionary<string, string> Data;

        static readonly Regex Rfc3339 = new Regex(
            @"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$");

        /// <summary>Parse and validate; throws OrderInvalidException with the reason.</summary>
        public static TriggerOrder Parse(byte[] json)
        {
            TriggerOrder order;
            try
            {
                var settings = new DataContractJsonSerializerSettings { UseSimpleDictionaryFormat = true };
                var serializer = new DataContractJsonSerializer(typeof(TriggerOrder), settings);
                order = (TriggerOrder)serializer.ReadObject(new MemoryStream(json));
            }
            catch (SerializationException e)
            {
                throw new OrderInvalidException("not a JSON order: " + e.Message);
            }
            order.Validate();
            return order;
        }

        void Validate()
        {
            if (string.IsNullOrEmpty(RequestId) || RequestId.Length > 64)
                throw new OrderInvalidException("request_id must be a string of 1..64 characters");
            if (Type != "GCS" && Type != "GBT")
                throw new OrderInvalidException("type must be GCS or GBT, got '" + Type + "'");
            if (Facility == null || !Regex.IsMatch(Facility, "^[0-9]{5}$"))
                throw new OrderInvalidException("facility must be 5 digits, got '" + Facility + "'");
            if (IssuedAt == null || !Rfc3339.IsMatch(IssuedAt))
                throw new OrderInvalidException("issued_at must be an RFC 3339 date-time with offset, got '" + IssuedAt + "'");
            if (Data == null)
                throw new OrderInvalidException("data must be an object of field name -> string");
            var unknown = Data.Keys.Where(k => !DocumentKind.Of(Type).Fields.Contains(k)).OrderBy(k => k).ToList();
            if (unknown.Count > 0)
                throw new OrderInvalidException("data holds field(s) that " + Type + " does not have: " + string.Join(", ", unknown));
            if (Data.Values.Any(v => v == null))
                throw new OrderInvalidException("data values must be strings");
        }

        public DateTimeOffset IssuedInstant
        {
            get { return DateTimeOffset.Parse(IssuedAt, System.Globalization.CultureInfo.InvariantCulture); }
        }

        public DocumentKind Kind { get { return DocumentKind.Of(Type); } }

        /// <summary>MA_GCS / MA_GBT as ordered (for logs).</summary>
        public string Code
        {
            get { string code; return Data.TryGetValue(Kind.CodeField, out code) ? code : ""; }
        }

        /// <summary>The unsigned file: the ordered fields in the document's field order, nothing added,
        /// an empty CHUKYDONVI after the data element (the signer fills it).</summary>
        public XmlDocument BuildXml()
        {
            var doc = new XmlDocument { PreserveWhitespace = true, XmlResolver = null };
            doc.AppendChild(doc.CreateXmlDeclaration("1.0", "utf-8", null));
            XmlElement root = doc.CreateElement(Kind.RootTag);
            root.SetAttribute("xmlns:xsd", "http://www.w3.org/2001/XMLSchema");
            root.SetAttribute("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance");
            doc.AppendChild(root);
            XmlElement data = doc.CreateElement(Kind.DataTag);
            data.SetAttribute("Id", "Id-" + Guid.NewGuid());
            root.AppendChild(data);
            foreach (string name in Kind.Fields)
            {
                string value;
                if (!Data.TryGetValue(name, out value)) continue;
                XmlElement field = doc.CreateElement(name);
                if (value.Length > 0) field.InnerText = value;
                data.AppendChild(field);
            }
            root.AppendChild(doc.CreateElement("CHUKYDONVI"));
            return doc;
        }
    }

    public sealed class OrderInvalidException : Exception
    {
        public OrderInvalidException(string message) : base(message) { }
    }

    /// <summary>GCS (loaiHs 61) and GBT (loaiHs 60): tags, code field and the field order of the portal's XSD.</summary>
    public sealed class DocumentKind
    {
        public readonly string LoaiHs, RootTag, DataTag, CodeField;
        public readonly string[] Fields;

        DocumentKind(string loaiHs, string root, string data, string codeField, string[] fields)
        {
            LoaiHs = loaiHs; RootTag = root; DataTag = data; CodeField = codeField; Fields = fields;
        }

        public static DocumentKind Of(string type)
        {
            return type == "GCS" ? Gcs : Gbt;
        }

        public static readonly DocumentKind Gcs = new DocumentKind("61", "HSDLGCS", "GIAYCHUNGSINH", "MA_GCS", new[] {
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
            "SO_CCCD_CHA_NND", "NGAYCAP_CCCD_CHA_NND", "NOICAP_CCCD_CHA_NND", "CAP_LAN_DAU" });

        public static readonly DocumentKind Gbt = new DocumentKind("60", "HSDLGBT", "GIAYBAOTU", "MA_GBT", new[] {
            "MA_GBT", "MA_BN", "MA_HSBA", "HO_TEN", "NGAY_SINH", "GIOI_TINH", "MA_THE", "MA_DANTOC",
            "MA_QUOCTICH", "DCHI_THUONGTRU", "MATINH_THUONGTRU", "MAHUYEN_THUONGTRU", "MAXA_THUONGTRU",
            "DCHI_HIENTAI", "MATINH_HIENTAI", "MAHUYEN_HIENTAI", "MAXA_HIENTAI", "LOAI_GIAYTO", "SO_GIAYTO",
            "NGAY_CAP", "NOI_CAP", "NGAYGIO_VV", "NGAY_TV", "TINH_TRANG_TV", "NGUYENNHAN_TV",
            "NGUOI_GHIGIAY", "NGUOI_THANTHICH", "TTRUONG_DVI", "SO_BAOTU", "QUYEN_SO", "NGAY_CAPGIAYBT",
            "SO_BAOTU_BD", "QUYEN_SO_BD", "MACSKCB", "DIACHI_CSKCB", "MA_BHXH", "BENH_ICD10_ID",
            "BENH_ICD10_TEN" });
    }

    /// <summary>XML in and out without surprises: no DTD, no resolver, whitespace kept, UTF-8 without BOM.</summary>
    public static class Xml
    {
        public static XmlDocument Load(byte[] bytes)
        {
            var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null };
            var doc = new XmlDocument { PreserveWhitespace = true, XmlResolver = null };
            using (var reader = XmlReader.Create(new MemoryStream(bytes), settings)) doc.Load(reader);
            return doc;
        }

        public static byte[] Bytes(XmlDocument doc)
        {
            var settings = new XmlWriterSettings { Encoding = new UTF8Encoding(false), Indent = false };
            var buffer = new MemoryStream();
            using (var writer = XmlWriter.Create(buffer, settings)) doc.Save(writer);
            return buffer.ToArray();
        }
    }
}
