// The hospital's queue on disk: one file per order and per step, written atomically, so a restart
// (or a crash) never sends a file twice after the portal acknowledged it.
//
//   DIR/orders/<key>.order.json   the order as taken (exit 0 of `order` means this file is on disk)
//   DIR/orders/<key>.signed.xml   the signed file, made once; every attempt sends these same bytes
//   DIR/orders/<key>.result       "sent <MaGD>" or "refused <reason>": the order is finished, never sent again
//   DIR/journal.log               one line per exchange with the portal
//
// <key> is the SHA-256 of request_id, so the same order taken twice is one file (idempotent).
// The only window for a duplicate is a crash between the portal's 200 and writing .result (a few
// microseconds); the next start then resends the same signed bytes once.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;

namespace HospitalClient
{
    public sealed class QueuedOrder
    {
        public string Key;
        public TriggerOrder Order;
        public DateTime TakenAtUtc;
    }

    public sealed class OrderQueue
    {
        readonly string directory, orders;

        public OrderQueue(string stateDirectory)
        {
            directory = stateDirectory;
            orders = Path.Combine(stateDirectory, "orders");
            Directory.CreateDirectory(orders);
        }

        static string KeyOf(string requestId)
        {
            using (var sha = SHA256.Create())
                return string.Concat(sha.ComputeHash(Encoding.UTF8.GetBytes(requestId)).Take(16).Select(b => b.ToString("x2")));
        }

        string PathOf(string key, string suffix) { return Path.Combine(orders, key + suffix); }

        /// <summary>Store a validated order; false when the same request_id was taken before.</summary>
        public bool Add(TriggerOrder order, byte[] json)
        {
            string target = PathOf(KeyOf(order.RequestId), ".order.json");
            if (File.Exists(target)) return false;
            return WriteAtomically(target, json);
        }

        /// <summary>Orders not finished yet, earliest issued_at first. The deadline is issued_at + 240 working
        /// minutes, which never reorders two orders, so this is earliest-deadline-first without a calendar.</summary>
        public List<QueuedOrder> Pending()
        {
            var pending = new List<QueuedOrder>();
            foreach (string file in Directory.GetFiles(orders, "*.order.json"))
            {
                string key = Path.GetFileName(file).Replace(".order.json", "");
                if (File.Exists(PathOf(key, ".result"))) continue;
                var order = TriggerOrder.Parse(File.ReadAllBytes(file));
                pending.Add(new QueuedOrder { Key = key, Order = order, TakenAtUtc = File.GetLastWriteTimeUtc(file) });
            }
            return pending.OrderBy(q => q.Order.IssuedInstant).ThenBy(q => q.TakenAtUtc).ThenBy(q => q.Key).ToList();
        }

        public byte[] Signed(QueuedOrder queued)
        {
            string file = PathOf(queued.Key, ".signed.xml");
            return File.Exists(file) ? File.ReadAllBytes(file) : null;
        }

        public void StoreSigned(QueuedOrder queued, byte[] xml) { WriteAtomically(PathOf(queued.Key, ".signed.xml"), xml); }

        public void Finish(QueuedOrder queued, string state, string detail)
        {
            WriteAtomically(PathOf(queued.Key, ".result"), Encoding.UTF8.GetBytes(state + " " + detail + "\n"));
        }

        /// <summary>Every order with its state, for `status`.</summary>
        public IEnumerable<string> Status()
        {
            foreach (string file in Directory.GetFiles(orders, "*.order.json").OrderBy(File.GetLastWriteTimeUtc))
            {
                string key = Path.GetFileName(file).Replace(".order.json", "");
                var order = TriggerOrder.Parse(File.ReadAllBytes(file));
                string result = PathOf(key, ".result");
                string state = File.Exists(result) ? File.ReadAllText(result).Trim() : "queued";
                yield return order.RequestId + "\t" + order.Type + "\t" + order.Code + "\t" + state;
            }
        }

        public void Journal(QueuedOrder queued, string operation, Reply reply)
        {
            string line = DateTime.UtcNow.ToString("o") + "\t" + queued.Order.RequestId + "\t" + operation + "\t" + reply + "\n";
            File.AppendAllText(Path.Combine(directory, "journal.log"), line, new UTF8Encoding(false));
        }

        /// <summary>Write to a temporary file, force it to disk, then rename: a reader sees all or nothing.</summary>
        static bool WriteAtomically(string target, byte[] bytes)
        {
            string temporary = target + "." + Guid.NewGuid().ToString("N") + ".tmp";
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
            {
                stream.Write(bytes, 0, bytes.Length);
                stream.Flush(true);
            }
            try
            {
                File.Move(temporary, target); // fails if the target exists: a concurrent duplicate
                return true;
            }
            catch (IOException)
            {
                File.Delete(temporary);
                return false;
            }
        }
    }
}
