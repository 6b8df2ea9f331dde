#!/usr/bin/perl
# A registrar's whole day with Perl's Net::EPP (Debian's libnet-epp-perl),
# unmodified, as two registrars against one gateway:
#   contacts: check, create, info, update (a status added, the e-mail changed);
#   domains: check, create, info, update (name servers, a contact and a client
#   status added; the status removed; DS records added, one refused, one
#   removed), renew; one deleted inside its add grace period; hosts in
#   bailiwick (v4 and v6 glue) and out of it; a premium name's fee checked,
#   a create stating less than it refused, one stating it charged;
#   -- the clock moves 61 days (no add grace, no transfer lock) --
#   a transfer REG1 -> REG2 (requested with the auth info, queried, heard of
#   by poll and acknowledged on both sides, approved); a contact transfer
#   REG1 -> REG2 (requested, queried, heard of, rejected; requested again and
#   cancelled; requested once more and approved, after which the contact has
#   a new auth info and REG1's old one no longer moves it); a domain deleted
#   and restored (RGP request and report); logout.
#
# Net::EPP::Simple's own methods do everything it has; what it lacks goes
# through the same library's frame classes and its generic request()
# method: poll (Net::EPP::Frame::Command::Poll::Req/Ack), the RGP restore
# and DS records (a Net::EPP::Frame::Command::Update::Domain carrying
# <rgp:update> or <secDNS:update>), and fees (Check::Domain and
# Create::Domain frames carrying <fee:check> and <fee:create>).
#
# Prints one line per step ("step-name CODE"); exits non-zero on the first
# surprise with the server's message. At two checkpoints it prints a line
# "PAUSE what" and waits for "go" on stdin:
#   PAUSE kill-leader    in the middle of REG1's session, which carries on
#                        afterwards on the same connection (the test may kill
#                        the cluster's leader meanwhile);
#   PAUSE advance-clock  the test moves the cluster's clock 61 days; the
#                        sessions expire, so both registrars log in again.
#
# With KAURI_EPP_FRAMES=DIR set, every frame the library sent and received
# is written there at exit (DIR/NNN-C.xml, DIR/NNN-S.xml), from the frames
# Net::EPP::Simple keeps in its @Log whether or not debugging is on, for the
# test to validate.
#
#   net_epp_day.pl HOST PORT REG1 REG2 PASSWORD PREFIX CA_FILE
use strict;
use warnings;
use Net::EPP::Simple;
use Net::EPP::Frame::Command::Poll::Req;
use Net::EPP::Frame::Command::Poll::Ack;
use Net::EPP::Frame::Command::Update::Domain;
use Net::EPP::Frame::Command::Check::Domain;
use Net::EPP::Frame::Command::Create::Domain;

use constant EPP_NS    => 'urn:ietf:params:xml:ns:epp-1.0';
use constant DOMAIN_NS  => 'urn:ietf:params:xml:ns:domain-1.0';
use constant CONTACT_NS => 'urn:ietf:params:xml:ns:contact-1.0';
use constant RGP_NS    => 'urn:ietf:params:xml:ns:rgp-1.0';
use constant SECDNS_NS => 'urn:ietf:params:xml:ns:secDNS-1.1';
use constant FEE_NS    => 'urn:ietf:params:xml:ns:epp:fee-1.0';

$| = 1;
my ($host, $port, $reg1, $reg2, $pass, $p, $ca) = @ARGV;
die "usage: net_epp_day.pl HOST PORT REG1 REG2 PASSWORD PREFIX CA_FILE\n" unless defined $ca;

my $contact  = "$p-c1";
my $moving   = "$p-c2";
my $moving_auth = "$p-c2-pw";
my $day      = "$p-day.test";
my $gone     = "$p-gone.test";
my $back     = "$p-back.test";
my $ns_in    = "ns1.$day";
my $ns_out   = "ns1.$p.example.net";
my $day_auth = "$p-Secret-1";
my $gold     = "$p-gold.test";    # a premium name: 25.00 to create
# Two DS records (algorithm 13, SHA-256) and one with SHA-1, which the
# registry refuses.
my @ds = ([ 12345, 13, 2, 'ab' x 32 ], [ 54321, 13, 2, 'cd' x 32 ]);
my $ds_sha1 = [ 11111, 13, 1, 'ef' x 20 ];

END {
    local $?;    # keep the exit status
    my $dir = $ENV{KAURI_EPP_FRAMES};
    if ($dir) {
        # Log lines are "DATE (PID): C: line" and "...: S: line", one per line
        # of each frame as the library pretty-printed it.
        my ($n, $fh) = (0, undef);
        for my $entry (@Net::EPP::Simple::Log) {
            next unless $entry =~ /^.*? \(\d+\): ([CS]): (.*)$/s;
            my ($side, $line) = ($1, $2);
            if ($line =~ /^<\?xml/) {
                close $fh if $fh;
                $n++;
                open($fh, '>', sprintf('%s/%03d-%s.xml', $dir, $n, $side)) or die "$dir: $!\n";
            }
            print $fh "$line\n" if $fh;
        }
        close $fh if $fh;
    }
}

sub surprise {
    my ($what) = @_;
    my $code = $Net::EPP::Simple::Code // 'none';
    die "$what: code $code: $Net::EPP::Simple::Message $Net::EPP::Simple::Error\n";
}

# Prints "NAME CODE" for the last answer; dies unless $ok and the code is
# $want.
sub step {
    my ($name, $ok, $want) = @_;
    my $code = $Net::EPP::Simple::Code // 'none';
    surprise("$name (wanted $want)") unless $ok && $code eq $want;
    print "$name $code\n";
}

sub expect {
    my ($what, $ok) = @_;
    die "unexpected: $what\n" unless $ok;
}

sub pause {
    my ($what) = @_;
    print "PAUSE $what\n";
    my $line = <STDIN>;
    die "no go after PAUSE $what\n" unless defined $line && $line =~ /^go/;
}

sub session {
    my ($user) = @_;
    my $epp = Net::EPP::Simple->new(
        host      => $host,
        port      => $port,
        user      => $user,
        pass      => $pass,
        verify    => 1,
        ca_file   => $ca,
        # No silent reconnection and re-login: a dropped session must show.
        reconnect => 0,
        # Long enough for the gateway to follow a new leader.
        timeout   => 30,
    );
    surprise("login $user") unless $epp;
    step("login-$user", 1, 1000);
    return $epp;
}

# A frame sent with the library's generic request(): the response and its
# code (also left in $Net::EPP::Simple::Code, as the library's methods do).
sub raw {
    my ($epp, $frame) = @_;
    my $response = $epp->request($frame);
    surprise('no answer') unless $response;
    $Net::EPP::Simple::Code    = $response->code;
    $Net::EPP::Simple::Message = $response->msg;
    my $reasons = $response->getElementsByTagNameNS(EPP_NS, 'reason');
    $Net::EPP::Simple::Error = $reasons->size ? $reasons->shift->textContent : '';
    return $response;
}

# Polls until a message about the object named $name (a domain name, or a
# contact id when $ns is CONTACT_NS) with transfer status $status is seen,
# acknowledging every message on the way; prints poll-req and poll-ack steps
# for that one ("# " lines for the others).
sub hear {
    my ($epp, $who, $name, $status, $ns) = @_;
    $ns //= DOMAIN_NS;
    my $tag = $ns eq CONTACT_NS ? 'id' : 'name';
    for my $i (1 .. 20) {
        my $r = raw($epp, Net::EPP::Frame::Command::Poll::Req->new);
        surprise("poll-$who: nothing about $name") if $r->code == 1300;
        surprise("poll-req-$who") unless $r->code == 1301;
        my $id    = $r->getElementsByTagNameNS(EPP_NS, 'msgQ')->shift->getAttribute('id');
        my $names = $r->getElementsByTagNameNS($ns, $tag);
        my $st    = $r->getElementsByTagNameNS($ns, 'trStatus');
        my $about = $names->size && $names->shift->textContent eq $name
            && $st->size && $st->shift->textContent eq $status;
        # Other messages (about other objects) are acknowledged as comments.
        my $what = $about ? '' : '# ';
        my @msgs = $r->getElementsByTagNameNS(EPP_NS, 'msg');
        print "# message $id: ", (@msgs > 1 ? $msgs[1]->textContent : ''), "\n" unless $about;
        my $ack = Net::EPP::Frame::Command::Poll::Ack->new;
        $ack->setMsgID($id);
        raw($epp, $ack);
        surprise("poll-ack-$who") unless $Net::EPP::Simple::Code == 1000;
        print "${what}poll-req-$who 1301\n${what}poll-ack-$who 1000\n";
        return if $about;
    }
    die "poll-$who: no message about $name ($status) in 20\n";
}

# Appends <extension> with $element to a command frame (before its clTRID).
sub with_extension {
    my ($f, $element) = @_;
    my $ext = $f->createElement('extension');
    $ext->appendChild($element);
    $f->command->insertBefore($ext, $f->clTRID);
    return $f;
}

# An element $ns:$name of frame $f with text children [name => text, ...].
sub element {
    my ($f, $ns, $qname, @children) = @_;
    my $el = $f->createElementNS($ns, $qname);
    my ($prefix) = $qname =~ /^(\w+):/;
    for my $pair (@children) {
        my ($name, $value) = @$pair;
        if (ref $value) {
            $el->appendChild($value);
        } else {
            my $child = $f->createElementNS($ns, "$prefix:$name");
            $child->appendText($value);
            $el->appendChild($child);
        }
    }
    return $el;
}

# An RGP restore (RFC 3915): a domain update whose <rgp:update> extension
# carries the restore. The frame is the library's own Update::Domain, which
# always holds (empty) <domain:add/>, <domain:rem/> and <domain:chg/>.
sub restore {
    my ($epp, $domain, $op, $report) = @_;
    my $f = Net::EPP::Frame::Command::Update::Domain->new;
    $f->setDomain($domain);
    my $restore = $f->createElementNS(RGP_NS, 'rgp:restore');
    $restore->setAttribute(op => $op);
    $restore->appendChild(element($f, RGP_NS, 'rgp:report', @$report)) if $report;
    my $update = $f->createElementNS(RGP_NS, 'rgp:update');
    $update->appendChild($restore);
    return raw($epp, with_extension($f, $update));
}

# A DS update (RFC 5910): a domain update whose <secDNS:update> removes the
# records of $rem and adds those of $add (each [keyTag, alg, digestType,
# digest]).
sub update_ds {
    my ($epp, $domain, $add, $rem) = @_;
    my $f = Net::EPP::Frame::Command::Update::Domain->new;
    $f->setDomain($domain);
    my $ds = sub {
        my ($tag, $alg, $type, $digest) = @{ $_[0] };
        return element($f, SECDNS_NS, 'secDNS:dsData',
            [ keyTag => $tag ], [ alg => $alg ], [ digestType => $type ], [ digest => $digest ]);
    };
    my $update = $f->createElementNS(SECDNS_NS, 'secDNS:update');
    $update->appendChild(element($f, SECDNS_NS, 'secDNS:rem', map { [ dsData => $ds->($_) ] } @$rem)) if @$rem;
    $update->appendChild(element($f, SECDNS_NS, 'secDNS:add', map { [ dsData => $ds->($_) ] } @$add)) if @$add;
    return raw($epp, with_extension($f, $update));
}

# A domain check with <fee:check> for a one-year create and renew.
sub fee_check {
    my ($epp, $domain) = @_;
    my $f = Net::EPP::Frame::Command::Check::Domain->new;
    $f->addDomain($domain);
    my $create = element($f, FEE_NS, 'fee:command', [ period => '1' ]);
    $create->setAttribute(name => 'create');
    $create->firstChild->setAttribute(unit => 'y');
    my $renew = $f->createElementNS(FEE_NS, 'fee:command');
    $renew->setAttribute(name => 'renew');
    return raw($epp, with_extension($f, element($f, FEE_NS, 'fee:check',
        [ currency => 'USD' ], [ command => $create ], [ command => $renew ])));
}

# A one-year domain create stating the fee $fee (<fee:create>).
sub create_with_fee {
    my ($epp, $domain, $registrant, $fee) = @_;
    my $f = Net::EPP::Frame::Command::Create::Domain->new;
    $f->setDomain($domain);
    $f->setPeriod(1);
    $f->setRegistrant($registrant);
    $f->setContacts({});
    $f->setAuthInfo("$domain-pw");
    return raw($epp, with_extension($f, element($f, FEE_NS, 'fee:create',
        [ currency => 'USD' ], [ fee => $fee ])));
}

# The text of the first element $ns:$name in response $r under $within (or
# anywhere), or ''.
sub text_of {
    my ($r, $ns, $name) = @_;
    my $els = $r->getElementsByTagNameNS($ns, $name);
    return $els->size ? $els->shift->textContent : '';
}

# --- REG1: contacts ---------------------------------------------------------
my $epp = session($reg1);

my $avail = $epp->check_contact($contact);
step('contact-check', defined $avail, 1000);
expect("$contact is free", $avail);

step('contact-create', $epp->create_contact({
    id         => $contact,
    postalInfo => { int => {
        name => 'Alice Perl',
        org  => 'Example Ltd',
        addr => { street => ['1 Queen St'], city => 'Auckland', pc => '1010', cc => 'NZ' },
    } },
    voice    => '+64.93001234',
    fax      => '',
    email    => 'alice@example.nz',
    authInfo => "$p-contact-pw",
}), 1000);

my $c = $epp->contact_info($contact);
step('contact-info', $c, 1000);
expect('the contact as created', $c->{postalInfo}{int}{name} eq 'Alice Perl'
    && $c->{email} eq 'alice@example.nz' && $c->{postalInfo}{int}{addr}{city} eq 'Auckland');

step('contact-update', $epp->update_contact({
    id  => $contact,
    add => { status => ['clientDeleteProhibited'] },
    chg => { email => 'alice@example.org' },
}), 1000);

$c = $epp->contact_info($contact);
step('contact-info-updated', $c, 1000);
expect('the e-mail changed, the rest kept, the status set',
    $c->{email} eq 'alice@example.org' && $c->{postalInfo}{int}{name} eq 'Alice Perl'
    && grep { $_ eq 'clientDeleteProhibited' } @{ $c->{status} || [] });

# --- REG1: a domain, its hosts, updates, renewal ----------------------------
$avail = $epp->check_domain($day);
step('domain-check', defined $avail, 1000);
expect("$day is free", $avail);

pause('kill-leader');

step('domain-create', $epp->create_domain({
    name       => $day,
    period     => 2,
    registrant => $contact,
    contacts   => { admin => $contact },
    authInfo   => $day_auth,
}), 1000);

step('host-create-in', $epp->create_host({
    name  => $ns_in,
    addrs => [ { ip => '192.0.2.1', version => 'v4' }, { ip => '2001:db8::1', version => 'v6' } ],
}), 1000);
step('host-create-out', $epp->create_host({ name => $ns_out, addrs => [] }), 1000);

my $h = $epp->host_info($ns_in);
step('host-info', $h, 1000);
my %addrs = map { ($_->{version} => $_->{addr}) } @{ $h->{addrs} || [] };
expect('glue v4 and v6', ($addrs{v4} // '') eq '192.0.2.1' && ($addrs{v6} // '') eq '2001:db8::1');

step('domain-update-add', $epp->update_domain({
    name => $day,
    add  => {
        ns       => [ $ns_in, $ns_out ],
        contacts => { tech => $contact },
        status   => { clientHold => 'parked for now' },
    },
}), 1000);

my $d = $epp->domain_info($day);
step('domain-info', $d, 1000);
expect('name servers, tech contact, status, auth info, subordinate host',
    join(',', sort @{ $d->{ns} || [] }) eq join(',', sort $ns_in, $ns_out)
    && ($d->{contacts}{tech} // '') eq $contact
    && ($d->{contacts}{admin} // '') eq $contact
    && (grep { $_ eq 'clientHold' } @{ $d->{status} || [] })
    && ($d->{authInfo} // '') eq $day_auth
    && (grep { $_ eq $ns_in } @{ $d->{hosts} || [] }));

# DS records: two added; SHA-1 refused and nothing changed; one removed.
update_ds($epp, $day, \@ds, []);
step('domain-update-ds-add', 1, 1000);
$d = $epp->domain_info($day);
step('domain-info-ds', $d, 1000);
# The registry writes digests in upper case.
expect('both DS records: ' . join(',', @{ $d->{DS} || [] }),
    join(',', sort @{ $d->{DS} || [] }) eq uc join(',', sort map { "@$_" } @ds));
update_ds($epp, $day, [$ds_sha1], []);
step('domain-update-ds-sha1', 1, 2306);
update_ds($epp, $day, [], [ $ds[0] ]);
step('domain-update-ds-rem', 1, 1000);
$d = $epp->domain_info($day);
step('domain-info-ds-rem', $d, 1000);
expect('the second DS record only', join(',', @{ $d->{DS} || [] }) eq uc "@{ $ds[1] }");

step('domain-update-rem', $epp->update_domain({
    name => $day,
    rem  => { status => ['clientHold'] },
}), 1000);

my $expiry = substr($d->{exDate}, 0, 10);
step('domain-renew', $epp->renew_domain({ name => $day, cur_exp_date => $expiry, period => 1 }), 1000);

$d = $epp->domain_info($day);
step('domain-info-renewed', $d, 1000);
expect('three years on, the status gone',
    substr($d->{exDate}, 0, 4) == substr($expiry, 0, 4) + 1
    && !grep { $_ eq 'clientHold' } @{ $d->{status} || [] });

# Deleted inside the add grace period: gone at once (1000), free again.
step('domain-create-gone', $epp->create_domain({ name => $gone, period => 1, registrant => $contact, authInfo => "$p-gone-pw" }), 1000);
step('domain-delete-gone', $epp->delete_domain($gone), 1000);
$avail = $epp->check_domain($gone);
step('domain-check-gone', defined $avail, 1000);
expect("$gone is free again", $avail);

step('domain-create-back', $epp->create_domain({ name => $back, period => 1, registrant => $contact, authInfo => "$p-back-pw" }), 1000);

# Fees (RFC 8748): a premium name's price seen before it is charged; a
# create stating less is refused and charges nothing; one stating it is
# charged that.
my $r = fee_check($epp, $gold);
step('fee-check', 1, 1000);
my %fee = map { ($_->getAttribute('name') => text_of($_, FEE_NS, 'fee')) }
    $r->getElementsByTagNameNS(FEE_NS, 'command');
expect("$gold: premium, 25.00 to create, 20.00 to renew",
    text_of($r, FEE_NS, 'class') eq 'premium' && ($fee{create} // '') eq '25.00'
    && ($fee{renew} // '') eq '20.00');
create_with_fee($epp, $gold, $contact, '24.99');
step('fee-create-low', 1, 2004);
$avail = $epp->check_domain($gold);
step('fee-check-after', defined $avail, 1000);
expect("$gold still free", $avail);
$r = create_with_fee($epp, $gold, $contact, '25.00');
step('fee-create', 1, 1000);
expect('charged 25.00', text_of($r, FEE_NS, 'fee') eq '25.00');

# --- Two months later -------------------------------------------------------
pause('advance-clock');
$epp->logout;
$epp = session($reg1);
my $epp2 = session($reg2);

# A transfer: REG2 asks with the auth info, REG1 hears of it and approves,
# REG2 hears of that, and the domain is REG2's.
my $t = $epp2->domain_transfer_request($day, $day_auth, 1);
step('transfer-request', $t, 1001);
expect('pending, asked by REG2', $t->{trStatus} eq 'pending' && $t->{reID} eq $reg2 && $t->{acID} eq $reg1);

$t = $epp->domain_transfer_query($day);
step('transfer-query', $t, 1000);
expect('pending', $t->{trStatus} eq 'pending');

hear($epp, $reg1, $day, 'pending');
step('transfer-approve', $epp->domain_transfer_approve($day), 1000);
hear($epp2, $reg2, $day, 'clientApproved');

$d = $epp2->domain_info($day);
step('domain-info-transferred', $d, 1000);
expect("$day is REG2's", $d->{clID} eq $reg2 && $d->{trDate});

# A contact transfer: REG1's contact, asked for by REG2 with its auth info;
# rejected, then asked for again and cancelled by REG2, then approved. The
# approval gives the contact a new auth info: REG1's old copy is refused.
step('contact-create-moving', $epp->create_contact({
    id         => $moving,
    postalInfo => { int => {
        name => 'Carol Perl',
        addr => { street => ['3 Queen St'], city => 'Auckland', pc => '1010', cc => 'NZ' },
    } },
    voice    => '+64.93005678',
    fax      => '',
    email    => 'carol@example.nz',
    authInfo => $moving_auth,
}), 1000);
$t = $epp2->contact_transfer_request($moving, $moving_auth);
step('contact-transfer-request', $t, 1001);
expect('pending, asked by REG2', $t->{trStatus} eq 'pending' && $t->{reID} eq $reg2 && $t->{acID} eq $reg1);
$t = $epp->contact_transfer_query($moving);
step('contact-transfer-query', $t, 1000);
expect('pending', $t->{trStatus} eq 'pending');
hear($epp, $reg1, $moving, 'pending', CONTACT_NS);
step('contact-transfer-reject', $epp->contact_transfer_reject($moving), 1000);
hear($epp2, $reg2, $moving, 'clientRejected', CONTACT_NS);
step('contact-transfer-request-again', $epp2->contact_transfer_request($moving, $moving_auth), 1001);
step('contact-transfer-cancel', $epp2->contact_transfer_cancel($moving), 1000);
step('contact-transfer-request-last', $epp2->contact_transfer_request($moving, $moving_auth), 1001);
$c = $epp->contact_info($moving);
step('contact-info-pending', $c, 1000);
expect('pendingTransfer', grep { $_ eq 'pendingTransfer' } @{ $c->{status} || [] });
step('contact-transfer-approve', $epp->contact_transfer_approve($moving), 1000);
hear($epp2, $reg2, $moving, 'clientApproved', CONTACT_NS);
$c = $epp2->contact_info($moving);
step('contact-info-moved', $c, 1000);
expect("$moving is REG2's, with a new auth info", $c->{clID} eq $reg2 && $c->{trDate}
    && ($c->{authInfo} // '') ne '' && $c->{authInfo} ne $moving_auth);
$t = $epp->contact_transfer_request($moving, $moving_auth);
step('contact-transfer-old-auth', !$t, 2202);

# Deleted outside the grace periods: pending deletion, then restored.
step('domain-delete-back', $epp->delete_domain($back), 1001);
# The report's times are the registry's (its clock, not ours): the domain's
# upDate after the delete and after the restore request.
$d = $epp->domain_info($back);
step('domain-info-deleted', $d, 1000);
expect('pendingDelete', grep { $_ eq 'pendingDelete' } @{ $d->{status} || [] });
my $deleted = $d->{upDate};
$r = restore($epp, $back, 'request');
step('restore-request', 1, 1000);
expect('pendingRestore', grep { $_->getAttribute('s') eq 'pendingRestore' }
    $r->getElementsByTagNameNS(RGP_NS, 'rgpStatus'));
$d = $epp->domain_info($back);
step('domain-info-restoring', $d, 1000);
my $restored = $d->{upDate};

restore($epp, $back, 'report', [
    [ preData    => "$back as it was before the delete" ],
    [ postData   => "$back as it is restored" ],
    [ delTime    => $deleted ],
    [ resTime    => $restored ],
    [ resReason  => 'Registrant error.' ],
    [ statement  => 'This registrar has not restored the domain name in order to assume the rights to use or sell it.' ],
    [ statement  => 'The information in this report is true to the best of this registrar\'s knowledge.' ],
]);
step('restore-report', 1, 1000);

$d = $epp->domain_info($back);
step('domain-info-restored', $d, 1000);
expect('no longer pending', !grep { /^pending/ } @{ $d->{status} || [] });

$epp->logout or surprise('logout');
print "logout-$reg1 ok\n";
$epp2->logout or surprise('logout');
print "logout-$reg2 ok\n";
