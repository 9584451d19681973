package vn.sandbox.hospital;

import java.io.FileInputStream;
import java.io.IOException;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import javax.xml.crypto.MarshalException;
import javax.xml.crypto.dom.DOMStructure;
import javax.xml.crypto.dsig.CanonicalizationMethod;
import javax.xml.crypto.dsig.DigestMethod;
import javax.xml.crypto.dsig.Reference;
import javax.xml.crypto.dsig.SignatureMethod;
import javax.xml.crypto.dsig.SignedInfo;
import javax.xml.crypto.dsig.XMLObject;
import javax.xml.crypto.dsig.XMLSignature;
import javax.xml.crypto.dsig.XMLSignatureException;
import javax.xml.crypto.dsig.XMLSignatureFactory;
import javax.xml.crypto.dsig.dom.DOMSignContext;
import javax.xml.crypto.dsig.keyinfo.KeyInfo;
import javax.xml.crypto.dsig.keyinfo.KeyInfoFactory;
import javax.xml.crypto.dsig.spec.C14NMethodParameterSpec;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.Node;

/**
 * The portal's two-reference XMLDSig profile with the JDK's javax.xml.crypto.dsig (JSR 105):
 * {@code <Signature Id="CHUKYDONVI-<Id>" xmlns="http://www.w3.org/2000/09/xmldsig#">} inside CHUKYDONVI,
 * inclusive C14N 1.0, RSA-SHA256, a SHA-256 Reference to {@code #Object-CHUKYDONVI-<Id>} (an Object with
 * SignatureProperties/SignatureProperty/SigningTime, Vietnam local time without offset) and one to
 * {@code #<Id>} (the data element); KeyInfo/X509Data with X509SubjectName and X509Certificate(s).
 */
final class Signer {
    private static final DateTimeFormatter SIGNING_TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss");
    private static final ZoneOffset VIETNAM = ZoneOffset.ofHours(7); // Asia/Ho_Chi_Minh, no daylight saving

    private Signer() {
    }

    /** The facility's signing key, its certificate and the intermediates, from a PKCS#12 (.p12/.pfx) file. */
    static final class Credential {
        final PrivateKey key;
        final X509Certificate certificate;
        final List<X509Certificate> intermediates;

        private Credential(PrivateKey key, X509Certificate certificate, List<X509Certificate> intermediates) {
            this.key = key;
            this.certificate = certificate;
            this.intermediates = intermediates;
        }

        /** The first key entry; its chain after the leaf, except a self-signed root (the portal has it), travels in X509Data. */
        static Credential load(String path, char[] password) throws IOException, GeneralSecurityException {
            KeyStore store = KeyStore.getInstance("PKCS12");
            try (FileInputStream in = new FileInputStream(path)) {
                store.load(in, password);
            }
            for (String alias : Collections.list(store.aliases())) {
                if (!store.isKeyEntry(alias)) continue;
                List<X509Certificate> chain = new ArrayList<>();
                for (Certificate c : store.getCertificateChain(alias)) chain.add((X509Certificate) c);
                List<X509Certificate> intermediates = new ArrayList<>();
                for (X509Certificate c : chain.subList(1, chain.size())) {
                    if (!c.getSubjectX500Principal().equals(c.getIssuerX500Principal())) intermediates.add(c);
                }
                return new Credential((PrivateKey) store.getKey(alias, password), chain.get(0), intermediates);
            }
            throw new GeneralSecurityException(path + " holds no private key");
        }
    }

    /** Sign {@code doc} (an unsigned HSDLGCS / HSDLGBT) in place. */
    static void sign(Document doc, Credential credential, OffsetDateTime signingTime) throws GeneralSecurityException {
        Element root = doc.getDocumentElement();
        Element data = dataElement(root);
        String id = data.getAttribute("Id");
        String signatureId = "CHUKYDONVI-" + id;
        String objectId = "Object-" + signatureId;
        Element container = child(root, "CHUKYDONVI");
        if (container == null) container = (Element) root.appendChild(doc.createElementNS(null, "CHUKYDONVI"));

        XMLSignatureFactory factory = XMLSignatureFactory.getInstance("DOM");
        DigestMethod sha256 = factory.newDigestMethod(DigestMethod.SHA256, null);
        SignedInfo signedInfo = factory.newSignedInfo(
                factory.newCanonicalizationMethod(CanonicalizationMethod.INCLUSIVE, (C14NMethodParameterSpec) null),
                factory.newSignatureMethod(SignatureMethod.RSA_SHA256, null),
                List.of(factory.newReference("#" + objectId, sha256), factory.newReference("#" + id, sha256)));

        KeyInfoFactory keys = factory.getKeyInfoFactory();
        List<Object> x509 = new ArrayList<>();
        x509.add(credential.certificate.getSubjectX500Principal().getName());
        x509.add(credential.certificate);
        x509.addAll(credential.intermediates);
        KeyInfo keyInfo = keys.newKeyInfo(List.of(keys.newX509Data(x509)));

        XMLObject object = factory.newXMLObject(
                List.of(new DOMStructure(signingTimeProperties(doc, signatureId, signingTime))), objectId, null, null);
        XMLSignature signature = factory.newXMLSignature(signedInfo, keyInfo, List.of(object), signatureId, null);

        // The Signature is built in the document that is sent, under its own root, so the JDK canonicalises
        // SignedInfo and both references in place with the namespaces in scope (xmlns:xsd / xmlns:xsi of
        // the root, the default dsig namespace): what xmlsec1, .NET SignedXml and the portal compute.
        DOMSignContext context = new DOMSignContext(credential.key, container);
        context.setIdAttributeNS(data, null, "Id"); // a plain "Id" attribute is no DOM ID until declared
        try {
            signature.sign(context);
        } catch (MarshalException | XMLSignatureException e) {
            throw new GeneralSecurityException("cannot build the Signature element: " + e.getMessage(), e);
        }
    }

    /** SignatureProperties in no namespace. The JDK canonicalises the DOM by its xmlns attributes, so the
     *  xmlns="" undeclaration under the default-namespace Object must be an explicit attribute: without it
     *  Java digests the Object as if SignatureProperties were in the dsig namespace and every other verifier
     *  disagrees. */
    private static Element signingTimeProperties(Document doc, String signatureId, OffsetDateTime signingTime) {
        Element properties = doc.createElementNS(null, "SignatureProperties");
        properties.setAttributeNS(Xml.XMLNS, "xmlns", "");
        Element property = doc.createElementNS(null, "SignatureProperty");
        property.setAttributeNS(null, "Target", "#" + signatureId);
        property.setAttributeNS(null, "Id", "SignatureProperty-" + signatureId);
        Element time = doc.createElementNS(null, "SigningTime");
        time.setTextContent(signingTime.withOffsetSameInstant(VIETNAM).format(SIGNING_TIME));
        property.appendChild(time);
        properties.appendChild(property);
        return properties;
    }

    /** The signed data element: the root's first child element carrying an Id attribute. */
    static Element dataElement(Element root) {
        for (Node n = root.getFirstChild(); n != null; n = n.getNextSibling()) {
            if (n instanceof Element && ((Element) n).hasAttribute("Id")) return (Element) n;
        }
        throw new IllegalArgumentException("no child of <" + root.getTagName() + "> carries an Id attribute");
    }

    static Element child(Element parent, String localName) {
        for (Node n = parent.getFirstChild(); n != null; n = n.getNextSibling()) {
            if (n instanceof Element && localName.equals(n.getLocalName())) return (Element) n;
        }
        return null;
    }
}
