package vn.sandbox.hospital;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.StringJoiner;

/** The HIAP wire API for one facility account: take a token, send one file with the seven form fields,
 *  classify the reply. Keeps its token and reuses it until the portal answers MaKetQua 401. */
final class PortalClient {
    static final String TOKEN_PATH = "/api/token/take";
    static final String SUBMIT_PATH = "/api/hososuckhoe/guiGiayToDienTu";

    /** What to do after one exchange. */
    enum Outcome {
        ACCEPTED,  // MaKetQua 200: acknowledged, never send again
        REFUSED,   // MaKetQua 205 (or an unexpected 4xx / unknown code): never resend this file
        TOO_LARGE, // MaKetQua 1001: never resend
        AUTH,      // MaKetQua 401: log in again, resend once
        RETRY      // MaKetQua 500, HTTP 5xx / 408 / 429, reset, timeout, unreadable reply: back off, resend
    }

    static final class Reply {
        Outcome outcome;
        Integer httpStatus;
        String code = "", maGD = "", receivedAt = "", explain = "", error = "";

        @Override
        public String toString() {
            List<String> parts = new ArrayList<>(List.of(outcome.name()));
            if (httpStatus != null) parts.add("HTTP " + httpStatus);
            if (!code.isEmpty()) parts.add("MaKetQua " + code);
            if (!maGD.isEmpty()) parts.add("MaGD " + maGD);
            if (!explain.isEmpty()) parts.add(explain);
            if (!error.isEmpty()) parts.add(error);
            return String.join("; ", parts);
        }
    }

    private final HttpClient http = HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(3))
            .build();
    private final String baseUrl, facility, username, passwordMd5;
    private Map<?, ?> token; // APIKey of the last token reply

    PortalClient(String baseUrl, String facility, String username, String password) {
        this.baseUrl = baseUrl.replaceAll("/+$", "");
        this.facility = facility;
        this.username = username;
        this.passwordMd5 = md5Upper(password);
    }

    boolean hasToken() {
        return token != null;
    }

    /** The password travels as the UPPERCASE hex MD5 of its UTF-8 bytes. */
    private static String md5Upper(String password) {
        try {
            StringBuilder hex = new StringBuilder();
            for (byte b : MessageDigest.getInstance("MD5").digest(password.getBytes(StandardCharsets.UTF_8))) {
                hex.append(String.format("%02X", b));
            }
            return hex.toString();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** POST /api/token/take as a form (never JSON); the reply is read as JSON by name, never by position. */
    Reply takeToken() {
        Map<String, String> form = new LinkedHashMap<>();
        form.put("username", username);
        form.put("password", passwordMd5);
        Reply reply = new Reply();
        Object body = post(TOKEN_PATH, form, reply);
        if (reply.outcome != null) return reply;
        reply.code = Objects.toString(Json.string(body, "maKetQua"), "");
        Object apiKey = body instanceof Map ? ((Map<?, ?>) body).get("APIKey") : null;
        boolean ok = reply.httpStatus == 200 && "200".equals(reply.code) && apiKey instanceof Map
                && Json.string(apiKey, "access_token") != null && Json.string(apiKey, "id_token") != null;
        reply.outcome = ok ? Outcome.ACCEPTED : Outcome.RETRY; // 401/402/403 too: an account may be fixed later
        if (ok) token = (Map<?, ?>) apiKey;
        return reply;
    }

    /** One send of one signed file with the current token. */
    Reply submit(DocumentKind kind, byte[] signedXml) {
        Map<String, String> form = new LinkedHashMap<>();
        form.put("maCskcb", facility);
        form.put("token", Json.string(token, "access_token"));
        form.put("id_token", Json.string(token, "id_token"));
        form.put("username", username);
        form.put("password", passwordMd5);
        form.put("loaiHs", kind.loaiHs);
        form.put("fileBase64Str", Base64.getEncoder().encodeToString(signedXml));
        Reply reply = new Reply();
        Object body = post(SUBMIT_PATH, form, reply);
        if (reply.outcome != null) return reply;
        reply.code = Objects.toString(Json.string(body, "MaKetQua"), "");
        reply.maGD = Objects.toString(Json.string(body, "MaGD"), "");
        reply.receivedAt = Objects.toString(Json.string(body, "ThoiGianTiepNhan"), "");
        reply.outcome = classify(reply.httpStatus, Json.string(body, "MaKetQua"));
        if (reply.outcome == Outcome.AUTH) token = null;
        return reply;
    }

    /** The reply of guiGiayToDienTu, judged on the HTTP status first, then on MaKetQua. */
    private static Outcome classify(int httpStatus, String maKetQua) {
        if (httpStatus >= 500 || httpStatus == 408 || httpStatus == 429) return Outcome.RETRY;
        if (httpStatus != 200) return Outcome.REFUSED;
        if (maKetQua == null) return Outcome.RETRY;
        switch (maKetQua) {
            case "200": return Outcome.ACCEPTED;
            case "205": return Outcome.REFUSED;
            case "401": return Outcome.AUTH;
            case "500": return Outcome.RETRY;
            case "1001": return Outcome.TOO_LARGE;
            default: return Outcome.REFUSED; // unknown: it may have been stored, so never resend blindly
        }
    }

    /** POST a form; returns the parsed JSON body (null when unreadable) or sets reply.outcome = RETRY
     *  when no reply came (reset, refused connection, timeout). */
    private Object post(String path, Map<String, String> form, Reply reply) {
        StringJoiner body = new StringJoiner("&");
        form.forEach((k, v) -> body.add(k + "=" + URLEncoder.encode(v, StandardCharsets.UTF_8)));
        HttpRequest request = HttpRequest.newBuilder(URI.create(baseUrl + path))
                .timeout(Duration.ofSeconds(15))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString(), StandardCharsets.US_ASCII))
                .build();
        HttpResponse<String> response;
        try {
            response = http.send(request, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        } catch (IOException e) {
            reply.outcome = Outcome.RETRY;
            reply.error = e.getClass().getSimpleName() + ": " + e.getMessage();
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            reply.outcome = Outcome.RETRY;
            reply.error = "interrupted";
            return null;
        }
        reply.httpStatus = response.statusCode();
        reply.explain = response.headers().firstValue("X-Sandbox-Explain").orElse("");
        try {
            return Json.parse(response.body());
        } catch (IllegalArgumentException e) {
            return null; // not JSON (a proxy's HTML page, a truncated reply)
        }
    }
}
