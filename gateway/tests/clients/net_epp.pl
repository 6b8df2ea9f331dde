#!/usr/bin/perl
# A registrar's session with Perl's Net::EPP (Debian's libnet-epp-perl),
# unmodified: connect over TLS verifying the server against the CA, log in,
# check a taken and a free name, log out. Prints one line per step; exits
# non-zero on the first surprise.
#   net_epp.pl HOST PORT CLID PASSWORD CA_FILE TAKEN FREE
use strict;
use warnings;
use Net::EPP::Simple;

my ($host, $port, $user, $pass, $ca, $taken, $free) = @ARGV;
die "usage: net_epp.pl HOST PORT CLID PASSWORD CA_FILE TAKEN FREE\n" unless defined $free;

my $epp = Net::EPP::Simple->new(
    host      => $host,
    port      => $port,
    user      => $user,
    pass      => $pass,
    verify    => 1,
    ca_file   => $ca,
    reconnect => 0,
    timeout   => 10,
);
die "login failed: $Net::EPP::Simple::Code $Net::EPP::Simple::Error\n" unless $epp;
print "login $Net::EPP::Simple::Code\n";

my $t = $epp->check_domain($taken);
die "check $taken: $Net::EPP::Simple::Code $Net::EPP::Simple::Error\n" unless defined $t;
print "check $taken $t\n";
die "$taken should be taken\n" unless $t == 0;

my $f = $epp->check_domain($free);
die "check $free: $Net::EPP::Simple::Code $Net::EPP::Simple::Error\n" unless defined $f;
print "check $free $f\n";
die "$free should be free\n" unless $f == 1;

$epp->logout or die "logout failed: $Net::EPP::Simple::Code $Net::EPP::Simple::Error\n";
print "logout ok\n";
