// The portal's two-reference XMLDSig profile with System.Security.Cryptography.Xml.SignedXml.
//
//   <HSDLGCS xmlns:xsd=… xmlns:xsi=…>
//     <GIAYCHUNGSINH Id="Id-…">…</GIAYCHUNGSINH>
//     <CHUKYDONVI>
//       <Signature Id="CHUKYDONVI-Id-…" xmlns="http://www.w3.org/2000/09/xmldsig#">
//         <SignedInfo> C14N 1.0 (inclusive), RSA-SHA256,
//           Reference URI="#Object-CHUKYDONVI-Id-…" (SHA-256)  → the Object below (SigningTime)
//           Reference URI="#Id-…"                   (SHA-256)  → the data element
//         <SignatureValue/> <KeyInfo><X509Data> X509SubjectName, X509Certificate(s)
//         <Object Id="Object-CHUKYDONVI-Id-…"><SignatureProperties xmlns="">
//           <SignatureProperty Target="#CHUKYDONVI-Id-…" Id="SignatureProperty-CHUKYDONVI-Id-…">
//             <SigningTime>yyyy-MM-ddTHH:mm:ss</SigningTime> (Vietnam local time, no offset)
//
// Builds with Mono (mcs -r:System.Security.dll) and with .NET 6+ (NuGet System.Security.Cryptography.Xml).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Security.Cryptography.Xml;
using System.Xml;

namespace HospitalClient
{
    public static class Signer
    {
        public const string DsNs = SignedXml.XmlDsigNamespaceUrl;
        static readonly TimeSpan Vietnam = TimeSpan.FromHours(7); // Asia/Ho_Chi_Minh, no daylight saving

        /// <summary>Sign `doc` (an unsigned HSDLGCS / HSDLGBT) in place with the key of `credential`.</summary>
        public static void Sign(XmlDocument doc, SigningCredential credential, DateTimeOffset signingTime)
        {
            XmlElement root = doc.DocumentElement;
            XmlElement data = DataElement(root);
            string id = data.GetAttribute("Id");
            string signatureId = "CHUKYDONVI-" + id;
            XmlElement container = root["CHUKYDONVI"] ?? (XmlElement)root.AppendChild(doc.CreateElement("CHUKYDONVI"));

            // THE C14N / NAMESPACE PITFALL. Inclusive C14N 1.0 writes every namespace declaration in scope into
            // the canonical form of SignedInfo and of each "#id" it digests. In this file that means xmlns:xsd
            // and xmlns:xsi of HSDLGCS / HSDLGBT (and the default dsig namespace), which verifiers — xmlsec1,
            // Java, the portal, SignedXml.CheckSignature itself — see on the final file. SignedXml takes those
            // namespaces from the *context* it is constructed with (`new SignedXml(doc)`: the document element
            // as it is at ComputeSignature), not from where the Signature finally lands. So a signature made
            // on a copy (a new XmlDocument holding only GIAYCHUNGSINH), or before the root got its xmlns:xsd /
            // xmlns:xsi (XmlSerializer adds them when it writes the object to a file), is computed over a
            // different SignedInfo and every verifier rejects the sent file — tested: signing with the two
            // declarations added afterwards fails in xmlsec1 and in SignedXml. This code avoids it by
            // (1) building the complete document first, root declarations included, (2) constructing SignedXml
            // on that very document and inserting the Signature under its own root, in CHUKYDONVI, and
            // (3) never touching the bytes afterwards (PreserveWhitespace, no re-serialising, no pretty-print).
            // SignatureProperties is created in *no* namespace, so it carries xmlns="" under the default-
            // namespace Object; that declaration is part of the Object's digest and must stay.
            var signed = new SignedXml(doc) { SigningKey = credential.PrivateKey };
            signed.Signature.Id = signatureId;
            signed.SignedInfo.CanonicalizationMethod = SignedXml.XmlDsigCanonicalizationUrl;
            signed.SignedInfo.SignatureMethod = SignedXml.XmlDsigRSASHA256Url;

            var signingObject = new DataObject { Id = "Object-" + signatureId, Data = SigningTimeProperties(doc, signatureId, signingTime) };
            signed.AddObject(signingObject);
            signed.AddReference(new Reference("#" + signingObject.Id) { DigestMethod = SignedXml.XmlDsigSHA256Url });
            signed.AddReference(new Reference("#" + id) { DigestMethod = SignedXml.XmlDsigSHA256Url });

            var x509 = new KeyInfoX509Data();
            x509.AddSubjectName(credential.Certificate.Subject);
            x509.AddCertificate(credential.Certificate);
            foreach (X509Certificate2 intermediate in credential.Chain) x509.AddCertificate(intermediate);
            signed.KeyInfo = new KeyInfo();
            signed.KeyInfo.AddClause(x509);

            signed.ComputeSignature();
            container.AppendChild(doc.ImportNode(signed.GetXml(), true));
        }

        static XmlNodeList SigningTimeProperties(XmlDocument doc, string signatureId, DateTimeOffset signingTime)
        {
            var holder = doc.CreateElement("holder");
            XmlElement properties = doc.CreateElement("SignatureProperties"); // no namespace: xmlns="" on the wire
            XmlElement property = doc.CreateElement("SignatureProperty");
            property.SetAttribute("Target", "#" + signatureId);
            property.SetAttribute("Id", "SignatureProperty-" + signatureId);
            XmlElement time = doc.CreateElement("SigningTime");
            time.InnerText = signingTime.ToOffset(Vietnam).ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture);
            property.AppendChild(time);
            properties.AppendChild(property);
            holder.AppendChild(properties);
            return holder.ChildNodes;
        }

        /// <summary>The signed data element: the root's first child element carrying an Id attribute.</summary>
        public static XmlElement DataElement(XmlElement root)
        {
            foreach (XmlNode child in root.ChildNodes)
            {
                var element = child as XmlElement;
                if (element != null && element.HasAttribute("Id")) return element;
            }
            throw new InvalidOperationException("no child of <" + root.Name + "> carries an Id attribute");
        }
    }

    /// <summary>The facility's signing key, its certificate and the intermediates, from a PKCS#12 (.p12/.pfx) file.</summary>
    public sealed class SigningCredential
    {
        public readonly X509Certificate2 Certificate;
        public readonly RSA PrivateKey;
        public readonly IList<X509Certificate2> Chain;

        SigningCredential(X509Certificate2 certificate, IList<X509Certificate2> chain)
        {
            Certificate = certificate;
            PrivateKey = certificate.GetRSAPrivateKey();
            Chain = chain;
        }

        /// <summary>The certificate with the private key is the signer; the other CA certificates, except
        /// self-signed roots (the portal has them), travel in X509Data after it. .NET 6+ finds them in the
        /// PKCS#12 file; Mono's reader returns only the certificate with the key, so on Mono pass the issuing
        /// CA certificates as a PEM file (`chainPem`, may be null).</summary>
        public static SigningCredential Load(string path, string password, string chainPem)
        {
            var all = new X509Certificate2Collection();
            all.Import(path, password, X509KeyStorageFlags.Exportable);
            X509Certificate2 leaf = all.Cast<X509Certificate2>().FirstOrDefault(c => c.HasPrivateKey);
            if (leaf == null) throw new ArgumentException(path + " holds no private key");
            if (chainPem != null) all.AddRange(ReadPem(chainPem));
            var chain = all.Cast<X509Certificate2>()
                .Where(c => c.Thumbprint != leaf.Thumbprint && c.Subject != c.Issuer)
                .GroupBy(c => c.Thumbprint).Select(g => g.First())
                .ToList();
            return new SigningCredential(leaf, chain);
        }

        static X509Certificate2[] ReadPem(string path)
        {
            const string begin = "-----BEGIN CERTIFICATE-----", end = "-----END CERTIFICATE-----";
            var certificates = new List<X509Certificate2>();
            string text = System.IO.File.ReadAllText(path);
            for (int at = text.IndexOf(begin); at >= 0; at = text.IndexOf(begin, at + 1))
            {
                int stop = text.IndexOf(end, at);
                if (stop < 0) break;
                string body = text.Substring(at + begin.Length, stop - at - begin.Length);
                certificates.Add(new X509Certificate2(Convert.FromBase64String(body.Trim())));
            }
            return certificates.ToArray();
        }
    }
}
