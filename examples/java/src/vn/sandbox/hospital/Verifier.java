package vn.sandbox.hospital;

import java.security.Key;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import javax.xml.crypto.AlgorithmMethod;
import javax.xml.crypto.KeySelector;
import javax.xml.crypto.KeySelectorException;
import javax.xml.crypto.KeySelectorResult;
import javax.xml.crypto.MarshalException;
import javax.xml.crypto.XMLCryptoContext;
import javax.xml.crypto.dsig.Reference;
import javax.xml.crypto.dsig.SignatureMethod;
import javax.xml.crypto.dsig.XMLSignature;
import javax.xml.crypto.dsig.XMLSignatureException;
import javax.xml.crypto.dsig.XMLSignatureFactory;
import javax.xml.crypto.dsig.dom.DOMValidateContext;
import javax.xml.crypto.dsig.keyinfo.KeyInfo;
import javax.xml.crypto.dsig.keyinfo.X509Data;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/** Checks a signed HSDLGCS / HSDLGBT with XMLSignature.validate (any signer: this client, C#, Python, xmlsec1). */
final class Verifier {
    private Verifier() {
    }

    /** Empty when the signature is valid and follows the two-reference profile; else the problems.
     *  Cryptography only: the key is the certificate's in KeyInfo (trust is the portal's job). */
    static List<String> problems(Document doc) throws MarshalException, XMLSignatureException {
        List<String> problems = new ArrayList<>();
        Element data = Signer.dataElement(doc.getDocumentElement());
        String id = data.getAttribute("Id");
        NodeList found = doc.getElementsByTagNameNS(XMLSignature.XMLNS, "Signature");
        if (found.getLength() != 1) return List.of(found.getLength() + " Signature elements, expected 1");
        Element signatureElement = (Element) found.item(0);
        if (!"CHUKYDONVI".equals(signatureElement.getParentNode().getNodeName())) problems.add("Signature is not inside CHUKYDONVI");

        DOMValidateContext context = new DOMValidateContext(new FirstCertificate(), signatureElement);
        context.setIdAttributeNS(data, null, "Id");
        NodeList objects = signatureElement.getElementsByTagNameNS(XMLSignature.XMLNS, "Object");
        for (int i = 0; i < objects.getLength(); i++) context.setIdAttributeNS((Element) objects.item(i), null, "Id");
        XMLSignature signature = XMLSignatureFactory.getInstance("DOM").unmarshalXMLSignature(context);

        List<String> uris = new ArrayList<>();
        for (Object reference : signature.getSignedInfo().getReferences()) uris.add(((Reference) reference).getURI());
        List<String> expected = List.of("#Object-CHUKYDONVI-" + id, "#" + id);
        if (!uris.equals(expected)) problems.add("references " + uris + "; expected " + expected);
        String method = signature.getSignedInfo().getSignatureMethod().getAlgorithm();
        if (!SignatureMethod.RSA_SHA256.equals(method)) problems.add("SignatureMethod " + method);
        if (!signature.validate(context)) problems.add("XMLSignature.validate: invalid");
        return problems;
    }

    /** The public key of the first X509Certificate in KeyInfo/X509Data. */
    private static final class FirstCertificate extends KeySelector {
        @Override
        public KeySelectorResult select(KeyInfo keyInfo, Purpose purpose, AlgorithmMethod method, XMLCryptoContext context)
                throws KeySelectorException {
            if (keyInfo != null) {
                for (Object item : keyInfo.getContent()) {
                    if (!(item instanceof X509Data)) continue;
                    for (Object entry : ((X509Data) item).getContent()) {
                        if (entry instanceof X509Certificate) {
                            Key key = ((X509Certificate) entry).getPublicKey();
                            return () -> key;
                        }
                    }
                }
            }
            throw new KeySelectorException("no X509Certificate in KeyInfo");
        }
    }
}
