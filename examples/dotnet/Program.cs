// Reference hospital client in C#: take orders, sign HSDLGCS / HSDLGBT, send them to the portal.
//
//   mono HospitalClient.exe order  --state-dir DIR < order.json           take one order (exit 0 = taken)
//   mono HospitalClient.exe work   --state-dir DIR --portal URL --facility CODE --username U --password P
//                                  --p12 FILE --p12-password PW [--chain CA.pem] [--drain]
//                                                                         send queued orders (runs until stopped)
//   mono HospitalClient.exe status --state-dir DIR                        every order and its state
//   mono HospitalClient.exe sign   --p12 FILE --p12-password PW [--chain CA.pem] < order.json > signed.xml
//   mono HospitalClient.exe verify FILE...                                 SignedXml.CheckSignature (exit 1 if invalid)
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;

namespace HospitalClient
{
    public static class Program
    {
        public static int Main(string[] args)
        {
            if (args.Length == 0) return Usage();
            var options = Options(args);
            try
            {
                switch (args[0])
                {
                    case "order": return TakeOrder(options);
                    case "work": return Work(options);
                    case "status": return Status(options);
                    case "sign": return Sign(options);
                    case "verify": return Verify(options);
                    default: return Usage();
                }
            }
            catch (OrderInvalidException e)
            {
                Console.Error.WriteLine("order refused: " + e.Message);
                return 2;
            }
            catch (KeyNotFoundException e)
            {
                Console.Error.WriteLine(e.Message);
                return Usage();
            }
        }

        static int Usage()
        {
            Console.Error.WriteLine("usage: HospitalClient.exe order|work|status|sign|verify [options] (see Program.cs)");
            return 2;
        }

        /// <summary>--name value pairs; the other words (verify's files) under "".</summary>
        static Dictionary<string, string> Options(string[] args)
        {
            var options = new Dictionary<string, string> { { "", "" } };
            for (int i = 1; i < args.Length; i++)
            {
                if (args[i] == "--drain") options["drain"] = "true";
                else if (args[i].StartsWith("--") && i + 1 < args.Length) options[args[i].Substring(2)] = args[++i];
                else options[""] += args[i] + "\n";
            }
            return options;
        }

        static string Need(Dictionary<string, string> options, string name)
        {
            string value;
            if (!options.TryGetValue(name, out value)) throw new KeyNotFoundException("missing --" + name);
            return value;
        }

        static byte[] ReadStdin()
        {
            var buffer = new MemoryStream();
            Console.OpenStandardInput().CopyTo(buffer);
            return buffer.ToArray();
        }

        static int TakeOrder(Dictionary<string, string> options)
        {
            byte[] json = ReadStdin();
            TriggerOrder order = TriggerOrder.Parse(json);
            bool added = new OrderQueue(Need(options, "state-dir")).Add(order, json);
            Console.WriteLine((added ? "taken " : "already taken ") + order.RequestId);
            return 0;
        }

        static int Work(Dictionary<string, string> options)
        {
            var settings = new WorkerSettings { Facility = Need(options, "facility") };
            string value;
            if (options.TryGetValue("max-attempts", out value)) settings.MaxAttempts = int.Parse(value, CultureInfo.InvariantCulture);
            if (options.TryGetValue("backoff-base", out value)) settings.BackoffBase = double.Parse(value, CultureInfo.InvariantCulture);
            if (options.TryGetValue("backoff-cap", out value)) settings.BackoffCap = double.Parse(value, CultureInfo.InvariantCulture);
            if (options.TryGetValue("requeue-after", out value)) settings.RequeueAfter = double.Parse(value, CultureInfo.InvariantCulture);
            SigningCredential credential = Credential(options);
            using (var portal = new PortalClient(Need(options, "portal"), settings.Facility, Need(options, "username"), Need(options, "password")))
            {
                new Worker(new OrderQueue(Need(options, "state-dir")), portal, credential, settings).Run(options.ContainsKey("drain"));
            }
            return 0;
        }

        static SigningCredential Credential(Dictionary<string, string> options)
        {
            string chain;
            options.TryGetValue("chain", out chain);
            return SigningCredential.Load(Need(options, "p12"), Need(options, "p12-password"), chain);
        }

        static int Status(Dictionary<string, string> options)
        {
            foreach (string line in new OrderQueue(Need(options, "state-dir")).Status()) Console.WriteLine(line);
            return 0;
        }

        /// <summary>Sign one order's document with SigningTime = its issue instant (for interop checks).</summary>
        static int Sign(Dictionary<string, string> options)
        {
            TriggerOrder order = TriggerOrder.Parse(ReadStdin());
            var doc = order.BuildXml();
            Signer.Sign(doc, Credential(options), order.IssuedInstant);
            byte[] bytes = Xml.Bytes(doc);
            using (Stream stdout = Console.OpenStandardOutput()) stdout.Write(bytes, 0, bytes.Length);
            return 0;
        }

        static int Verify(Dictionary<string, string> options)
        {
            int invalid = 0;
            foreach (string file in options[""].Split(new[] { '\n' }, StringSplitOptions.RemoveEmptyEntries))
            {
                List<string> problems;
                try
                {
                    problems = Verifier.Problems(Xml.Load(File.ReadAllBytes(file)));
                }
                catch (Exception e) when (e is System.Xml.XmlException || e is System.Security.Cryptography.CryptographicException
                                          || e is InvalidOperationException)
                {
                    problems = new List<string> { e.GetType().Name + ": " + e.Message };
                }
                Console.WriteLine(file + ": " + (problems.Count == 0 ? "VALID" : "INVALID: " + string.Join("; ", problems)));
                if (problems.Count > 0) invalid++;
            }
            return invalid == 0 ? 0 : 1;
        }
    }
}
