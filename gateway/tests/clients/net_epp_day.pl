#!/usr/bin/perl
# A registrar's whole day with Perl's Net::EPP (Debian's libnet-epp-perl),
# unmodified, as two registrars against one gateway:
#   contacts: check, create, info, update (a status added, the e-mail changed);
#   domains: check, create, info, update (name servers, a contact and a client
#   status added; the status removed), renew; one deleted inside its add grace
#   period; hosts in bailiwick (v4 and v6 glue) and out of it;
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
# method: poll (Net::EPP::Frame::Command::Poll::Req/Ack) and the RGP restore
# (a Net::EPP::Frame::Command::Update::Domain carrying <rgp:update>).
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

use constant EPP_NS    => 'urn:ietf:params:xml:ns:epp-1.0';
use constant DOMAIN_NS  => 'urn:ietf:params:xml:ns:domain-1.0';
use constant CONTACT_NS => 'urn:ietf:params:xml:ns:contact-1.0';
use constant RGP_NS    => 'urn:ietf:params:xml:ns:rgp-1.0';

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

# An RGP restore (RFC 3915): a domain update whose <rgp:update> extension
# carries the restore. The frame is the library's own Update::Domain, which
# always holds (empty) <domain:add/>, <domain:rem/> and <domain:chg/>.
sub restore {
    my ($epp, $domain, $op, $report) = @_;
    my $f = Net::EPP::Frame::Command::Update::Domain->new;
    $f->setDomain($domain);
    my $ext     = $f->createElement('extension');
    my $update  = $f->createElementNS(RGP_NS, 'rgp:update');
    my $restore = $f->createElementNS(RGP_NS, 'rgp:restore');
    $restore->setAttribute(op => $op);
    if ($report) {
        my $r = $f->createElementNS(RGP_NS, 'rgp:report');
        for my $pair (@$report) {
            my ($name, $text) = @$pair;
            my $el = $f->createElementNS(RGP_NS, "rgp:$name");
            $el->appendText($text);
            $r->appendChild($el);
        }
        $restore->appendChild($r);
    }
    $update->appendChild($restore);
    $ext->appendChild($update);
    $f->command->insertBefore($ext, $f->clTRID);
    return raw($epp, $f);
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
my $r = restore($epp, $back, 'request');
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
