// Checks a signed HSDLGCS / HSDLGBT with SignedXml.CheckSignature (any signer: this client, Java, Python, xmlsec1).
using System;
using System.Collections.Generic;
using System.Linq;
using System.Security.Cryptography.X509Certificates;
using System.Security.Cryptography.Xml;
using System.Xml;

namespace HospitalClient
{
    public static class Verifier
    {
        /// <summary>Empty when the signature is valid and follows the two-reference profile; else the problems.
        /// Cryptography only: the certificate is the one in KeyInfo (trust is the portal's job).</summary>
        public static List<string> Problems(XmlDocument doc)
        {
            var problems = new List<string>();
            XmlElement data = Signer.DataElement(doc.DocumentElement);
            string id = data.GetAttribute("Id");
            XmlNodeList found = doc.GetElementsByTagName("Signature", Signer.DsNs);
            if (found.Count != 1) return new List<string> { found.Count + " Signature elements, expected 1" };
            var signatureElement = (XmlElement)found[0];
            if (signatureElement.ParentNode.Name != "CHUKYDONVI") problems.Add("Signature is not inside CHUKYDONVI");

            var signed = new SignedXml(doc);
            signed.LoadXml(signatureElement);
            var uris = signed.SignedInfo.References.Cast<Reference>().Select(r => r.Uri).ToList();
            var expected = new List<string> { "#Object-CHUKYDONVI-" + id, "#" + id };
            if (!uris.SequenceEqual(expected))
                problems.Add("references " + string.Join(", ", uris) + "; expected " + string.Join(", ", expected));
            if (signed.SignedInfo.SignatureMethod != SignedXml.XmlDsigRSASHA256Url)
                problems.Add("SignatureMethod " + signed.SignedInfo.SignatureMethod);

            X509Certificate2 certificate = signed.KeyInfo.OfType<KeyInfoX509Data>()
                .SelectMany(x => x.Certificates.Cast<X509Certificate2>()).FirstOrDefault();
            if (certificate == null) problems.Add("no X509Certificate in KeyInfo");
            else if (!signed.CheckSignature(certificate, true)) problems.Add("SignedXml.CheckSignature: invalid");
            return problems;
        }
    }
}
