"""A registrar's whole day with InternetNZ's pyepp (PyPI), unmodified, as two
registrars against one gateway:

  contacts: check, create, info, update (the e-mail changed), info;
  domains: check, create, info, update (name servers, a contact and a client
  status added; the status removed; DS records added, one refused, one
  removed), renew; one deleted inside its add grace period; one created with
  a DS record; hosts in bailiwick (v4 and v6 glue) and out of it; a premium
  name's fee checked, a create stating less than it refused, one stating it
  charged;
  -- the clock moves 61 days (no add grace, no transfer lock) --
  a transfer REG1 -> REG2 (requested with the auth info, queried, heard of by
  poll and acknowledged on both sides, approved); a contact transfer REG1 ->
  REG2 (requested, queried, heard of, rejected; requested again and
  cancelled; requested once more and approved, after which the contact has a
  new auth info and REG1's old one no longer moves it); a domain deleted and
  restored (RGP request and report); logout.

pyepp's own classes (Contact, Host, Domain, Poll) do everything they have;
what pyepp lacks (domain transfer query and approve, contact transfers, DS
updates, fees) goes as raw XML through its
generic EppCommunicator.execute(). Every command carries a clTRID of ours
(pyepp's client_transaction_id): a command answered 2400 with an unknown
outcome (a leader lost mid-command) is sent again with the same clTRID, as
the gateway asks, and the cluster applies it once.

pyepp trusts only the default store: SSL_CERT_FILE names the CA.

Prints one line per step ("step-name CODE"), "# ..." lines for retries and
for poll messages about other objects;
exits non-zero on the first surprise with the server's message. At two
checkpoints it prints "PAUSE what" and waits for "go" on stdin:
  PAUSE kill-leader    in the middle of REG1's session, which carries on
                       afterwards on the same connection;
  PAUSE advance-clock  the test moves the cluster's clock 61 days; the
                       sessions expire, so both registrars log in again.

With KAURI_EPP_FRAMES=DIR set, every frame the server sent is written there
at exit (DIR/NNN-S.xml), as pyepp logs them (passwords masked), for the test
to validate.

    python pyepp_day_full.py HOST PORT REG1 REG2 PASSWORD PREFIX
"""

import logging
import os
import sys
from datetime import date, datetime

from bs4 import BeautifulSoup
from pyepp import (
    AddressData,
    Contact,
    ContactData,
    Domain,
    DomainData,
    EppCommunicator,
    Host,
    HostData,
    IPAddressData,
    Poll,
    PostalInfoData,
)

DOMAIN_NS = "urn:ietf:params:xml:ns:domain-1.0"
CONTACT_NS = "urn:ietf:params:xml:ns:contact-1.0"
SECDNS_NS = "urn:ietf:params:xml:ns:secDNS-1.1"
FEE_NS = "urn:ietf:params:xml:ns:epp:fee-1.0"
# Two DS records (algorithm 13, SHA-256) and one with SHA-1, which the
# registry refuses: (keyTag, alg, digestType, digest).
DS = [(12345, 13, 2, "ab" * 32), (54321, 13, 2, "cd" * 32)]
DS_SHA1 = (11111, 13, 1, "ef" * 20)


def ds_data(ds):
    tag, alg, digest_type, digest = ds
    return (f"<secDNS:dsData><secDNS:keyTag>{tag}</secDNS:keyTag><secDNS:alg>{alg}</secDNS:alg>"
            f"<secDNS:digestType>{digest_type}</secDNS:digestType>"
            f"<secDNS:digest>{digest}</secDNS:digest></secDNS:dsData>")


def ds_of(result_data):
    """The DS records of a domain info as pyepp parsed them (the registry
    writes digests in upper case)."""
    return sorted((int(d.key_tag), int(d.algorithm), int(d.digest_type), d.digest.lower())
                  for d in result_data.dns_sec or [])


class Surprise(Exception):
    pass


def expect(what, ok):
    if not ok:
        raise Surprise(f"unexpected: {what}")


class Day:
    def __init__(self, host, port, reg1, reg2, password, prefix):
        self.host, self.port = host, port
        self.reg1, self.reg2, self.password, self.p = reg1, reg2, password, prefix
        self.n = 0

    def session(self, user):
        epp = EppCommunicator(self.host, self.port)
        epp.connect()
        # pyepp always asks for secDNS-1.1; RGP and fees are asked for by name.
        login = epp.login(user, self.password, extensions=["rgp-1.0", "epp:fee-1.0"])
        self.say(f"login-{user}", login.code)
        return epp

    def say(self, name, code):
        print(f"{name} {code}", flush=True)

    def step(self, name, want, send, quiet=False):
        """Runs send(clTRID); resends with the same clTRID while the answer
        is 2400 (the outcome unknown, as after a lost leader); prints the
        step and fails unless the code is `want`."""
        self.n += 1
        cl_trid = f"{self.p}-{self.n}-{name}"[:64]
        for attempt in range(5):
            result = send(cl_trid)
            if result.code != 2400:
                break
            print(f"# {name} 2400 (attempt {attempt + 1}): {result.message} "
                  f"{result.reason or ''}; sending it again as {cl_trid}", flush=True)
        if not quiet or result.code != want:
            self.say(name, result.code)
        if result.code != want:
            raise Surprise(f"{name}: wanted {want}, got {result.code}: "
                           f"{result.message} {result.reason or ''}\n{result.raw_response!r}")
        expect(f"{name} answered with our clTRID", result.client_transaction_id == cl_trid)
        return result

    def raw(self, epp, body):
        """A command pyepp has no method for, through execute()."""
        return lambda cl_trid: epp.execute(
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><command>'
            f"{body}<clTRID>{cl_trid}</clTRID></command></epp>"
        )

    def pause(self, what):
        print(f"PAUSE {what}", flush=True)
        line = sys.stdin.readline()
        if not line.startswith("go"):
            raise Surprise(f"no go after PAUSE {what}")

    def hear(self, epp, who, name, status, tag="name"):
        """Polls until a message about the object `name` (a domain's name, or
        a contact's id with tag="id") with transfer status `status`,
        acknowledging each message on the way."""
        poll = Poll(epp)
        for _ in range(20):
            # Messages about other objects are acknowledged as "# " lines.
            r = self.step(f"poll-req-{who}", 1301,
                          lambda t: poll.request(client_transaction_id=t), quiet=True)
            xml = BeautifulSoup(r.raw_response, "xml")
            named = xml.find(tag)
            trstatus = xml.find("trStatus")
            about = (named is not None and named.text == name
                     and trstatus is not None and trstatus.text == status)
            msg_id = r.result_data.message_id
            if not about:
                print(f"# message {msg_id}: {r.result_data.messages}", flush=True)
            self.step(f"poll-ack-{who}", 1000,
                      lambda t: poll.acknowledge(msg_id, client_transaction_id=t), quiet=True)
            mark = "" if about else "# "
            print(f"{mark}poll-req-{who} 1301\n{mark}poll-ack-{who} 1000", flush=True)
            if about:
                return
        raise Surprise(f"poll-{who}: no message about {name} ({status}) in 20")

    def run(self):
        p = self.p
        contact = f"{p}-c1"
        day, gone, back = f"{p}-day.test", f"{p}-gone.test", f"{p}-back.test"
        ns_in, ns_out = f"ns1.{day}", f"ns1.{p}.example.net"
        day_auth = f"{p}-Secret-1"

        # --- REG1: contacts -------------------------------------------------
        epp = self.session(self.reg1)
        contacts = Contact(epp)
        r = self.step("contact-check", 1000,
                      lambda t: contacts.check([contact], client_transaction_id=t))
        expect(f"{contact} is free", r.result_data[contact]["avail"])
        self.step("contact-create", 1000, lambda t: contacts.create(ContactData(
            id=contact,
            email="bob@example.nz",
            phone="+64.44701234",
            password=f"{p}-contact-pw",
            postal_info=PostalInfoData(
                name="Bob Python",
                organization="Example Ltd",
                type="int",
                address=AddressData(street_1="2 Lambton Quay", city="Wellington",
                                    postal_code="6011", country_code="NZ"),
            ),
        ), client_transaction_id=t))
        r = self.step("contact-info", 1000,
                      lambda t: contacts.info(contact, client_transaction_id=t))
        c = r.result_data
        expect("the contact as created", c.email == "bob@example.nz"
               and c.postal_info.name == "Bob Python"
               and c.postal_info.address.city == "Wellington")
        # pyepp's contact update renders a status as s=value without quotes
        # (not XML), so it changes the e-mail only.
        self.step("contact-update", 1000, lambda t: contacts.update(
            ContactData(id=contact, email="bob@example.org"), client_transaction_id=t))
        r = self.step("contact-info-updated", 1000,
                      lambda t: contacts.info(contact, client_transaction_id=t))
        c = r.result_data
        expect("the e-mail changed, the rest kept", c.email == "bob@example.org"
               and c.postal_info.name == "Bob Python"
               and c.postal_info.address.city == "Wellington")

        # --- REG1: a domain, its hosts, updates, renewal --------------------
        domains, hosts = Domain(epp), Host(epp)
        r = self.step("domain-check", 1000,
                      lambda t: domains.check([day], client_transaction_id=t))
        expect(f"{day} is free", r.result_data[day]["avail"])

        self.pause("kill-leader")

        self.step("domain-create", 1000, lambda t: domains.create(DomainData(
            domain_name=day, period=2, registrant=contact, admin=contact,
            password=day_auth), client_transaction_id=t))
        self.step("host-create-in", 1000, lambda t: hosts.create(HostData(
            host_name=ns_in, address=[IPAddressData(address="192.0.2.1", ip="v4"),
                                      IPAddressData(address="2001:db8::1", ip="v6")]),
            client_transaction_id=t))
        self.step("host-create-out", 1000, lambda t: hosts.create(
            HostData(host_name=ns_out, address=[]), client_transaction_id=t))
        r = self.step("host-info", 1000,
                      lambda t: hosts.info(ns_in, client_transaction_id=t))
        addrs = {a.ip: a.address for a in r.result_data.address or []}
        expect(f"glue v4 and v6: {addrs}",
               addrs == {"v4": "192.0.2.1", "v6": "2001:db8::1"})
        self.step("domain-update-add", 1000, lambda t: domains.update(
            day, add_hosts=[ns_in, ns_out], add_techs=[contact],
            add_statuses=[("clientHold", "parked for now")], client_transaction_id=t))
        r = self.step("domain-info", 1000,
                      lambda t: domains.info(day, client_transaction_id=t))
        d = r.result_data
        expect(f"name servers, tech contact, status, auth info: {d}",
               sorted(d.host or []) == sorted([ns_in, ns_out])
               and d.tech == contact and d.admin == contact
               and "clientHold" in d.status and d.password == day_auth)
        # DS records: two added; SHA-1 refused and nothing changed; one removed.
        def update_ds(add=(), rem=()):
            rem_xml = f"<secDNS:rem>{''.join(map(ds_data, rem))}</secDNS:rem>" if rem else ""
            add_xml = f"<secDNS:add>{''.join(map(ds_data, add))}</secDNS:add>" if add else ""
            return self.raw(
                epp, f'<update><domain:update xmlns:domain="{DOMAIN_NS}">'
                     f"<domain:name>{day}</domain:name></domain:update></update>"
                     f'<extension><secDNS:update xmlns:secDNS="{SECDNS_NS}">'
                     f"{rem_xml}{add_xml}</secDNS:update></extension>")

        self.step("domain-update-ds-add", 1000, update_ds(add=DS))
        r = self.step("domain-info-ds", 1000,
                      lambda t: domains.info(day, client_transaction_id=t))
        expect(f"both DS records: {r.result_data.dns_sec}", ds_of(r.result_data) == sorted(DS))
        self.step("domain-update-ds-sha1", 2306, update_ds(add=[DS_SHA1]))
        self.step("domain-update-ds-rem", 1000, update_ds(rem=[DS[0]]))
        r = self.step("domain-info-ds-rem", 1000,
                      lambda t: domains.info(day, client_transaction_id=t))
        expect(f"the second DS record only: {r.result_data.dns_sec}",
               ds_of(r.result_data) == [DS[1]])
        self.step("domain-update-rem", 1000, lambda t: domains.update(
            day, remove_statuses=["clientHold"], client_transaction_id=t))
        expiry = date.fromisoformat(d.expiry_date[:10])
        self.step("domain-renew", 1000, lambda t: domains.renew(
            day, expiry, period=1, client_transaction_id=t))
        r = self.step("domain-info-renewed", 1000,
                      lambda t: domains.info(day, client_transaction_id=t))
        d = r.result_data
        expect("three years on, the status gone",
               int(d.expiry_date[:4]) == expiry.year + 1 and "clientHold" not in d.status)

        # Deleted inside the add grace period: gone at once (1000), free again.
        self.step("domain-create-gone", 1000, lambda t: domains.create(DomainData(
            domain_name=gone, period=1, registrant=contact), client_transaction_id=t))
        self.step("domain-delete-gone", 1000,
                  lambda t: domains.delete(gone, client_transaction_id=t))
        r = self.step("domain-check-gone", 1000,
                      lambda t: domains.check([gone], client_transaction_id=t))
        expect(f"{gone} is free again", r.result_data[gone]["avail"])
        # Created with a DS record through pyepp's own secDNS support.
        back_ds = {"key_tag": DS[1][0], "algorithm": DS[1][1], "digest_type": DS[1][2],
                   "digest": DS[1][3]}
        self.step("domain-create-back", 1000, lambda t: domains.create(DomainData(
            domain_name=back, period=1, registrant=contact, dns_sec=[back_ds]),
            client_transaction_id=t))

        # Fees (RFC 8748): a premium name's price seen before it is charged;
        # a create stating less is refused and charges nothing; one stating
        # it is charged that.
        gold = f"{p}-gold.test"
        r = self.step("fee-check", 1000, self.raw(
            epp, f'<check><domain:check xmlns:domain="{DOMAIN_NS}">'
                 f"<domain:name>{gold}</domain:name></domain:check></check>"
                 f'<extension><fee:check xmlns:fee="{FEE_NS}"><fee:currency>USD</fee:currency>'
                 '<fee:command name="create"><fee:period unit="y">1</fee:period></fee:command>'
                 '<fee:command name="renew"/></fee:check></extension>'))
        xml = BeautifulSoup(r.raw_response, "xml")
        fees = {c["name"]: c.find("fee").text for c in xml.find_all("command")}
        expect(f"{gold}: premium, 25.00 to create, 20.00 to renew: {fees}",
               xml.find("class").text == "premium"
               and fees == {"create": "25.00", "renew": "20.00"})

        def create_gold(fee):
            return self.raw(
                epp, f'<create><domain:create xmlns:domain="{DOMAIN_NS}">'
                     f"<domain:name>{gold}</domain:name><domain:period unit=\"y\">1</domain:period>"
                     f"<domain:registrant>{contact}</domain:registrant>"
                     f"<domain:authInfo><domain:pw>{p}-gold-pw</domain:pw></domain:authInfo>"
                     f"</domain:create></create>"
                     f'<extension><fee:create xmlns:fee="{FEE_NS}"><fee:currency>USD</fee:currency>'
                     f"<fee:fee>{fee}</fee:fee></fee:create></extension>")

        self.step("fee-create-low", 2004, create_gold("24.99"))
        r = self.step("fee-check-after", 1000,
                      lambda t: domains.check([gold], client_transaction_id=t))
        expect(f"{gold} still free", r.result_data[gold]["avail"])
        r = self.step("fee-create", 1000, create_gold("25.00"))
        expect("charged 25.00",
               BeautifulSoup(r.raw_response, "xml").find("fee").text == "25.00")

        # --- Two months later -----------------------------------------------
        self.pause("advance-clock")
        epp.logout()
        epp = self.session(self.reg1)
        epp2 = self.session(self.reg2)
        domains, domains2 = Domain(epp), Domain(epp2)
        contacts = Contact(epp)

        r = self.step("transfer-request", 1001, lambda t: domains2.transfer(
            day, day_auth, period=1, client_transaction_id=t))
        xml = BeautifulSoup(r.raw_response, "xml")
        expect("pending, asked by REG2", xml.find("trStatus").text == "pending"
               and xml.find("reID").text == self.reg2)
        r = self.step("transfer-query", 1000, self.raw(
            epp, f'<transfer op="query"><domain:transfer xmlns:domain="{DOMAIN_NS}">'
                 f"<domain:name>{day}</domain:name></domain:transfer></transfer>"))
        expect("pending", BeautifulSoup(r.raw_response, "xml").find("trStatus").text
               == "pending")
        self.hear(epp, self.reg1, day, "pending")
        self.step("transfer-approve", 1000, self.raw(
            epp, f'<transfer op="approve"><domain:transfer xmlns:domain="{DOMAIN_NS}">'
                 f"<domain:name>{day}</domain:name></domain:transfer></transfer>"))
        self.hear(epp2, self.reg2, day, "clientApproved")
        r = self.step("domain-info-transferred", 1000,
                      lambda t: domains2.info(day, client_transaction_id=t))
        expect(f"{day} is REG2's", r.result_data.sponsoring_client_id == self.reg2
               and r.result_data.transfer_date)

        # A contact transfer: REG1's contact, asked for by REG2 with its auth
        # info; rejected, then asked for again and cancelled by REG2, then
        # approved. The approval gives the contact a new auth info: REG1's old
        # copy is refused.
        moving, moving_auth = f"{p}-c2", f"{p}-c2-pw"

        def contact_transfer(session, op, auth=None):
            pw = (f"<contact:authInfo><contact:pw>{auth}</contact:pw></contact:authInfo>"
                  if auth else "")
            return self.raw(
                session, f'<transfer op="{op}"><contact:transfer xmlns:contact="{CONTACT_NS}">'
                         f"<contact:id>{moving}</contact:id>{pw}</contact:transfer></transfer>")

        self.step("contact-create-moving", 1000, lambda t: contacts.create(ContactData(
            id=moving,
            email="dave@example.nz",
            phone="+64.44705678",
            password=moving_auth,
            postal_info=PostalInfoData(
                name="Dave Python",
                type="int",
                address=AddressData(street_1="4 Lambton Quay", city="Wellington",
                                    postal_code="6011", country_code="NZ"),
            ),
        ), client_transaction_id=t))
        r = self.step("contact-transfer-request", 1001,
                      contact_transfer(epp2, "request", moving_auth))
        xml = BeautifulSoup(r.raw_response, "xml")
        expect("pending, asked by REG2", xml.find("trStatus").text == "pending"
               and xml.find("reID").text == self.reg2 and xml.find("acID").text == self.reg1)
        r = self.step("contact-transfer-query", 1000, contact_transfer(epp, "query"))
        expect("pending", BeautifulSoup(r.raw_response, "xml").find("trStatus").text
               == "pending")
        self.hear(epp, self.reg1, moving, "pending", tag="id")
        self.step("contact-transfer-reject", 1000, contact_transfer(epp, "reject"))
        self.hear(epp2, self.reg2, moving, "clientRejected", tag="id")
        self.step("contact-transfer-request-again", 1001,
                  contact_transfer(epp2, "request", moving_auth))
        self.step("contact-transfer-cancel", 1000, contact_transfer(epp2, "cancel"))
        self.step("contact-transfer-request-last", 1001,
                  contact_transfer(epp2, "request", moving_auth))
        r = self.step("contact-info-pending", 1000,
                      lambda t: contacts.info(moving, client_transaction_id=t))
        # pyepp reads a status's text; the status is in the s attribute.
        expect("pendingTransfer", 's="pendingTransfer"' in r.raw_response.decode())
        self.step("contact-transfer-approve", 1000, contact_transfer(epp, "approve"))
        self.hear(epp2, self.reg2, moving, "clientApproved", tag="id")
        r = self.step("contact-info-moved", 1000,
                      lambda t: Contact(epp2).info(moving, client_transaction_id=t))
        c = r.result_data
        # pyepp's contact data has no transfer date: it is read from the XML.
        expect(f"{moving} is REG2's, with a new auth info: {c}",
               c.sponsoring_client_id == self.reg2
               and BeautifulSoup(r.raw_response, "xml").find("trDate") is not None
               and c.password and c.password != moving_auth)
        self.step("contact-transfer-old-auth", 2202,
                  contact_transfer(epp, "request", moving_auth))

        # Deleted outside the grace periods: pending deletion, then restored.
        self.step("domain-delete-back", 1001,
                  lambda t: domains.delete(back, client_transaction_id=t))
        # The report's times are the registry's (its clock, not ours): the
        # domain's upDate after the delete and after the restore request.
        r = self.step("domain-info-deleted", 1000,
                      lambda t: domains.info(back, client_transaction_id=t))
        expect("pendingDelete", "pendingDelete" in r.result_data.status)
        expect(f"its DS record kept: {r.result_data.dns_sec}", ds_of(r.result_data) == [DS[1]])
        deleted = datetime.fromisoformat(r.result_data.update_date)
        r = self.step("restore-request", 1000,
                      lambda t: domains.restore(back, client_transaction_id=t))
        expect("pendingRestore", 'rgpStatus s="pendingRestore"' in r.raw_response.decode())
        r = self.step("domain-info-restoring", 1000,
                      lambda t: domains.info(back, client_transaction_id=t))
        restored = datetime.fromisoformat(r.result_data.update_date)
        self.step("restore-report", 1000, lambda t: domains.restore_report(
            back,
            pre_data=f"{back} as it was before the delete",
            post_data=f"{back} as it is restored",
            delete_datetime=deleted,
            restore_datetime=restored,
            restore_reason="Registrant error.",
            statement_1="This registrar has not restored the domain name in order to "
                        "assume the rights to use or sell it.",
            statement_2="The information in this report is true to the best of this "
                        "registrar's knowledge.",
            other="Nothing else.",
            client_transaction_id=t))
        r = self.step("domain-info-restored", 1000,
                      lambda t: domains.info(back, client_transaction_id=t))
        expect("no longer pending",
               not any(s.startswith("pending") for s in r.result_data.status))

        self.say(f"logout-{self.reg1}", epp.logout().code)
        self.say(f"logout-{self.reg2}", epp2.logout().code)


class Frames(logging.Handler):
    """Keeps the frames pyepp logs at debug level: the greeting and each
    response."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.frames = []

    def emit(self, record):
        if record.msg.startswith(("Received greeting", "Received xml response")):
            frame = record.args[0]
            self.frames.append(frame.decode() if isinstance(frame, bytes) else frame)


def main() -> int:
    host, port, reg1, reg2, password, prefix = sys.argv[1:7]
    frames = Frames()
    logging.getLogger().addHandler(frames)
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        Day(host, port, reg1, reg2, password, prefix).run()
    except Surprise as e:
        print(f"surprise: {e}", file=sys.stderr)
        return 1
    finally:
        out = os.environ.get("KAURI_EPP_FRAMES")
        if out:
            for n, frame in enumerate(frames.frames, 1):
                with open(os.path.join(out, f"{n:03}-S.xml"), "w", encoding="utf-8") as f:
                    f.write(frame)
    return 0


if __name__ == "__main__":
    sys.exit(main())
