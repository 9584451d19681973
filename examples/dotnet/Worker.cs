// The background sender: takes the pending order with the earliest deadline, signs it once, sends it
// until the portal acknowledges or refuses it, backing off on transient failures.
using System;
using System.Collections.Generic;
using System.Threading;

namespace HospitalClient
{
    public sealed class WorkerSettings
    {
        public string Facility;
        public double BackoffBase = 0.2;    // seconds; delay after the n-th failure is random(0, min(cap, base * 2^(n-1)))
        public double BackoffCap = 5.0;
        public int MaxAttempts = 12;        // failures per round before the order waits and the next one goes
        public double RequeueAfter = 10.0;  // seconds a given-up order waits before its next round
    }

    public sealed class Worker
    {
        readonly OrderQueue queue;
        readonly PortalClient portal;
        readonly SigningCredential credential;
        readonly WorkerSettings settings;
        readonly Dictionary<string, DateTime> heldUntil = new Dictionary<string, DateTime>();
        readonly Random random = new Random();

        public Worker(OrderQueue queue, PortalClient portal, SigningCredential credential, WorkerSettings settings)
        {
            this.queue = queue; this.portal = portal; this.credential = credential; this.settings = settings;
        }

        /// <summary>Work forever (drain = false) or until no order is due.</summary>
        public void Run(bool drain)
        {
            while (true)
            {
                QueuedOrder next = queue.Pending().Find(q => !IsHeld(q));
                if (next != null) Deliver(next);
                else if (drain) return;
                else Thread.Sleep(100);
            }
        }

        bool IsHeld(QueuedOrder queued)
        {
            DateTime until;
            return heldUntil.TryGetValue(queued.Key, out until) && until > DateTime.UtcNow;
        }

        void Deliver(QueuedOrder queued)
        {
            TriggerOrder order = queued.Order;
            if (order.Facility != settings.Facility)
            {
                queue.Finish(queued, "refused", "order for facility " + order.Facility + ", this is " + settings.Facility);
                return;
            }
            byte[] xml = queue.Signed(queued);
            if (xml == null)
            {
                xml = SignedFile(queued);
                queue.StoreSigned(queued, xml);
            }
            int failures = 0;
            bool mayRelogin = true;
            while (true)
            {
                Reply reply = portal.HasToken ? null : portal.TakeToken();
                if (reply != null) queue.Journal(queued, "token", reply);
                if (reply == null || reply.Outcome == Outcome.Accepted)
                {
                    reply = portal.Submit(order.Kind, xml);
                    queue.Journal(queued, "submit", reply);
                    switch (reply.Outcome)
                    {
                        case Outcome.Accepted:
                            queue.Finish(queued, "sent", reply.MaGD);
                            Console.Error.WriteLine("sent " + order.Code + ": MaGD " + reply.MaGD);
                            return;
                        case Outcome.Refused:
                        case Outcome.TooLarge:
                            queue.Finish(queued, "refused", reply.ToString());
                            Console.Error.WriteLine("refused " + order.Code + ": " + reply);
                            return;
                        case Outcome.Auth:
                            if (mayRelogin) { mayRelogin = false; continue; } // token dropped: log in, resend now
                            break;
                    }
                }
                failures++; // a transient failure, a failed login, or a second 401 in a row
                if (failures >= settings.MaxAttempts)
                {
                    heldUntil[queued.Key] = DateTime.UtcNow.AddSeconds(settings.RequeueAfter);
                    Console.Error.WriteLine("holding " + order.Code + " after " + failures + " failures: " + reply);
                    return;
                }
                double ceiling = Math.Min(settings.BackoffCap, settings.BackoffBase * Math.Pow(2, failures - 1));
                Thread.Sleep(TimeSpan.FromSeconds(random.NextDouble() * ceiling));
            }
        }

        /// <summary>SigningTime = the issue instant + the real time since the order was taken. In production
        /// that is "now"; against the sandbox, whose clock may be set to another day or run faster, it stays
        /// after the issue and never after the portal's receipt (the portal refuses a SigningTime more than
        /// 5 minutes after receipt), where the machine's own clock could be days off.</summary>
        byte[] SignedFile(QueuedOrder queued)
        {
            TimeSpan elapsed = DateTime.UtcNow - queued.TakenAtUtc;
            if (elapsed < TimeSpan.Zero) elapsed = TimeSpan.Zero;
            DateTimeOffset signingTime = queued.Order.IssuedInstant + elapsed;
            var doc = queued.Order.BuildXml();
            Signer.Sign(doc, credential, signingTime);
            return Xml.Bytes(doc);
        }
    }
}
