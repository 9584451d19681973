package vn.sandbox.hospital;

import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.ByteBuffer;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import org.w3c.dom.Document;
import org.w3c.dom.Element;

/** One issue order (conformance/trigger.schema.json) and the unsigned HSDLGCS / HSDLGBT it becomes. */
final class TriggerOrder {
    static final class Invalid extends Exception {
        private static final long serialVersionUID = 1L;

        Invalid(String message) {
            super(message);
        }
    }

    private static final Set<String> KEYS = Set.of("request_id", "type", "facility", "issued_at", "data");
    /** Optional keys: {@code portal} (base_url, clock_rate, sandbox_time) is sent with --order-portal. */
    private static final Set<String> OPTIONAL = Set.of("portal");

    final String requestId;
    final DocumentKind kind;
    final String facility;
    final OffsetDateTime issuedAt;
    final Map<String, String> data;

    private TriggerOrder(String requestId, DocumentKind kind, String facility, OffsetDateTime issuedAt, Map<String, String> data) {
        this.requestId = requestId;
        this.kind = kind;
        this.facility = facility;
        this.issuedAt = issuedAt;
        this.data = data;
    }

    /** Parse and validate one order (UTF-8 JSON); Invalid says which field and why. */
    static TriggerOrder parse(byte[] json) throws Invalid {
        Object parsed;
        try {
            String text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(json)).toString();
            parsed = Json.parse(text);
        } catch (CharacterCodingException | IllegalArgumentException e) {
            throw new Invalid("not UTF-8 JSON: " + e.getMessage());
        }
        if (!(parsed instanceof Map)) throw new Invalid("an order is a JSON object");
        Map<?, ?> order = (Map<?, ?>) parsed;
        Set<String> missing = new TreeSet<>(KEYS);
        missing.removeAll(order.keySet());
        if (!missing.isEmpty()) throw new Invalid("missing required field(s): " + String.join(", ", missing));
        Set<Object> extra = new TreeSet<>(order.keySet());
        extra.removeAll(KEYS);
        extra.removeAll(OPTIONAL);
        if (!extra.isEmpty()) throw new Invalid("unknown field(s): " + extra);
        if (order.containsKey("portal") && !(order.get("portal") instanceof Map))
            throw new Invalid("portal must be an object (base_url, clock_rate, sandbox_time)");
        String requestId = Json.string(order, "request_id");
        if (requestId == null || requestId.isEmpty() || requestId.length() > 64)
            throw new Invalid("request_id must be a string of 1..64 characters");
        String type = Json.string(order, "type");
        if (!"GCS".equals(type) && !"GBT".equals(type)) throw new Invalid("type must be GCS or GBT, got " + type);
        String facility = Json.string(order, "facility");
        if (facility == null || !facility.matches("[0-9]{5}")) throw new Invalid("facility must be 5 digits, got " + facility);
        OffsetDateTime issuedAt;
        try {
            issuedAt = OffsetDateTime.parse(String.valueOf(Json.string(order, "issued_at")));
        } catch (DateTimeParseException e) {
            throw new Invalid("issued_at must be an RFC 3339 date-time with offset: " + e.getMessage());
        }
        DocumentKind kind = DocumentKind.valueOf(type);
        if (!(order.get("data") instanceof Map)) throw new Invalid("data must be an object of field name -> string");
        Map<String, String> data = new LinkedHashMap<>();
        for (Map.Entry<?, ?> field : ((Map<?, ?>) order.get("data")).entrySet()) {
            String name = (String) field.getKey();
            if (!kind.fields.contains(name)) throw new Invalid("data holds a field that " + type + " does not have: " + name);
            if (!(field.getValue() instanceof String)) throw new Invalid("data values must be strings: " + name);
            data.put(name, (String) field.getValue());
        }
        return new TriggerOrder(requestId, kind, facility, issuedAt, data);
    }

    /** MA_GCS / MA_GBT as ordered (for logs). */
    String code() {
        return data.getOrDefault(kind.codeField, "");
    }

    /** The unsigned file: the ordered fields in the document's field order, nothing added, an empty
     *  CHUKYDONVI after the data element (the signer fills it). */
    Document buildXml() {
        Document doc = Xml.newDocument();
        Element root = doc.createElementNS(null, kind.rootTag);
        root.setAttributeNS(Xml.XMLNS, "xmlns:xsd", "http://www.w3.org/2001/XMLSchema");
        root.setAttributeNS(Xml.XMLNS, "xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance");
        doc.appendChild(root);
        Element element = doc.createElementNS(null, kind.dataTag);
        element.setAttributeNS(null, "Id", "Id-" + UUID.randomUUID());
        root.appendChild(element);
        for (String name : kind.fields) {
            String value = data.get(name);
            if (value == null) continue;
            Element field = doc.createElementNS(null, name);
            if (!value.isEmpty()) field.setTextContent(value);
            element.appendChild(field);
        }
        root.appendChild(doc.createElementNS(null, "CHUKYDONVI"));
        return doc;
    }
}
