// The HIAP wire API: take a token, send one file with the seven form fields, classify the reply.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Runtime.Serialization;
using System.Runtime.Serialization.Json;
using System.Security.Cryptography;
using System.Text;

namespace HospitalClient
{
    /// <summary>What to do after one exchange.</summary>
    public enum Outcome
    {
        Accepted, // MaKetQua 200: acknowledged, never send again
        Refused,  // MaKetQua 205 (or an unexpected 4xx / unknown code): never resend this file
        TooLarge, // MaKetQua 1001: never resend
        Auth,     // MaKetQua 401: log in again, resend once
        Retry,    // MaKetQua 500, HTTP 5xx / 408 / 429, reset, timeout, unreadable reply: back off, resend
    }

    public sealed class Reply
    {
        public Outcome Outcome;
        public int? HttpStatus;
        public string Code = "", MaGD = "", ReceivedAt = "", Explain = "", Error = "";

        public override string ToString()
        {
            var parts = new List<string> { Outcome.ToString().ToUpperInvariant() };
            if (HttpStatus.HasValue) parts.Add("HTTP " + HttpStatus);
            if (Code.Length > 0) parts.Add("MaKetQua " + Code);
            if (MaGD.Length > 0) parts.Add("MaGD " + MaGD);
            if (Explain.Length > 0) parts.Add(Explain);
            if (Error.Length > 0) parts.Add(Error);
            return string.Join("; ", parts);
        }
    }

    [DataContract] sealed class TokenReply
    {
        [DataMember(Name = "maKetQua")] public string MaKetQua;
        [DataMember(Name = "APIKey")] public ApiKey ApiKey;
    }

    [DataContract] sealed class ApiKey
    {
        [DataMember(Name = "access_token")] public string AccessToken;
        [DataMember(Name = "id_token")] public string IdToken;
        [DataMember(Name = "expires_in")] public string ExpiresIn;
    }

    [DataContract] sealed class SubmitReply
    {
        [DataMember(Name = "MaKetQua")] public string MaKetQua;
        [DataMember(Name = "MaGD")] public string MaGD;
        [DataMember(Name = "ThoiGianTiepNhan")] public string ThoiGianTiepNhan;
    }

    /// <summary>One facility account. Keeps its token and reuses it for every file until the portal answers
    /// MaKetQua 401 (expired or revoked); the caller then logs in again (see Worker).</summary>
    public sealed class PortalClient : IDisposable
    {
        public const string TokenPath = "/api/token/take";
        public const string SubmitPath = "/api/hososuckhoe/guiGiayToDienTu";

        readonly HttpClient http;
        readonly string facility, username, passwordMd5;
        ApiKey token;

        public PortalClient(string baseUrl, string facility, string username, string password)
        {
            http = new HttpClient { BaseAddress = new Uri(baseUrl.TrimEnd('/') + "/"), Timeout = TimeSpan.FromSeconds(15) };
            http.DefaultRequestHeaders.ExpectContinue = false; // Mono / .NET Framework wait for "100 Continue" otherwise
            this.facility = facility;
            this.username = username;
            passwordMd5 = Md5Upper(password);
        }

        public bool HasToken { get { return token != null; } }

        public void ForgetToken() { token = null; }

        /// <summary>The password travels as the UPPERCASE hex MD5 of its UTF-8 bytes.</summary>
        static string Md5Upper(string password)
        {
            using (var md5 = MD5.Create())
                return string.Concat(md5.ComputeHash(Encoding.UTF8.GetBytes(password)).Select(b => b.ToString("X2")));
        }

        /// <summary>POST /api/token/take as a form (never JSON); the reply is read as JSON by name, never by position.</summary>
        public Reply TakeToken()
        {
            var reply = Post(TokenPath, new Dictionary<string, string> { { "username", username }, { "password", passwordMd5 } });
            if (reply.Body == null) return reply.Result;
            TokenReply body = Read<TokenReply>(reply.Body);
            reply.Result.Code = body == null ? "" : body.MaKetQua ?? "";
            bool ok = reply.Result.HttpStatus == 200 && body != null && body.MaKetQua == "200" && body.ApiKey != null;
            reply.Result.Outcome = ok ? Outcome.Accepted : Outcome.Retry; // 401/402/403 too: an account may be fixed later
            if (ok) token = body.ApiKey;
            return reply.Result;
        }

        /// <summary>One send of one signed file with the current token (take one first if there is none).</summary>
        public Reply Submit(DocumentKind kind, byte[] signedXml)
        {
            var form = new Dictionary<string, string>
            {
                { "maCskcb", facility },
                { "token", token.AccessToken },
                { "id_token", token.IdToken },
                { "username", username },
                { "password", passwordMd5 },
                { "loaiHs", kind.LoaiHs },
                { "fileBase64Str", Convert.ToBase64String(signedXml) },
            };
            var reply = Post(SubmitPath, form);
            if (reply.Body == null) return reply.Result;
            SubmitReply body = Read<SubmitReply>(reply.Body);
            Reply result = reply.Result;
            result.Outcome = Classify(result.HttpStatus.Value, body);
            if (body != null)
            {
                result.Code = body.MaKetQua ?? "";
                result.MaGD = body.MaGD ?? "";
                result.ReceivedAt = body.ThoiGianTiepNhan ?? "";
            }
            if (result.Outcome == Outcome.Auth) token = null;
            return result;
        }

        /// <summary>The reply of guiGiayToDienTu, judged on the HTTP status first, then on MaKetQua.</summary>
        static Outcome Classify(int httpStatus, SubmitReply body)
        {
            if (httpStatus >= 500 || httpStatus == 408 || httpStatus == 429) return Outcome.Retry;
            if (httpStatus != 200) return Outcome.Refused;
            if (body == null) return Outcome.Retry;
            switch (body.MaKetQua)
            {
                case "200": return Outcome.Accepted;
                case "205": return Outcome.Refused;
                case "401": return Outcome.Auth;
                case "500": return Outcome.Retry;
                case "1001": return Outcome.TooLarge;
                default: return Outcome.Refused; // unknown: it may have been stored, so never resend blindly
            }
        }

        sealed class Raw
        {
            public Reply Result = new Reply();
            public byte[] Body;
        }

        Raw Post(string path, Dictionary<string, string> form)
        {
            // Form-encoded by hand: .NET Framework / Mono's FormUrlEncodedContent refuses values over ~64 KB
            // (Uri.EscapeDataString limit), and fileBase64Str is usually larger.
            string encoded = string.Join("&", form.Select(f => f.Key + "=" + WebUtility.UrlEncode(f.Value)));
            var content = new ByteArrayContent(Encoding.ASCII.GetBytes(encoded));
            content.Headers.ContentType = new MediaTypeHeaderValue("application/x-www-form-urlencoded");
            var raw = new Raw();
            try
            {
                using (HttpResponseMessage response = http.PostAsync(path, content).GetAwaiter().GetResult())
                {
                    raw.Result.HttpStatus = (int)response.StatusCode;
                    IEnumerable<string> explain;
                    if (response.Headers.TryGetValues("X-Sandbox-Explain", out explain))
                        raw.Result.Explain = string.Join(" ", explain);
                    raw.Body = response.Content.ReadAsByteArrayAsync().GetAwaiter().GetResult();
                    raw.Result.Outcome = raw.Result.HttpStatus >= 500 ? Outcome.Retry : Outcome.Refused;
                }
            }
            catch (Exception e) when (e is HttpRequestException || e is IOException || e is OperationCanceledException)
            {
                raw.Result.Outcome = Outcome.Retry; // reset, refused connection, timeout: no reply at all
                raw.Result.Error = e.GetType().Name + ": " + e.Message;
            }
            return raw;
        }

        static T Read<T>(byte[] json) where T : class
        {
            try
            {
                return (T)new DataContractJsonSerializer(typeof(T)).ReadObject(new MemoryStream(json));
            }
            catch (Exception e) when (e is SerializationException || e is System.Xml.XmlException)
            {
                return null; // not JSON (a proxy's HTML page, a truncated reply)
            }
        }

        public void Dispose() { http.Dispose(); }
    }
}
