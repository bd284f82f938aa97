#!/usr/bin/perl
# make_mmdb.pl OUT CIDR=CC ... - writes a small MaxMind-format country
# database (the GeoLite2-Country layout: country.iso_code) mapping each
# CIDR to the country code, with Debian's libmaxmind-db-writer-perl.
# Reserved ranges (loopback, private) are kept, so tests on 127.0.0.x
# can have countries.
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my $out = shift @ARGV or die "usage: make_mmdb.pl OUT CIDR=CC ...\n";
my %types = (
	country            => 'map',
	registered_country => 'map',
	iso_code           => 'utf8_string',
	names              => 'map',
	en                 => 'utf8_string',
);
my $tree = MaxMind::DB::Writer::Tree->new(
	ip_version               => 6,
	record_size              => 28,
	database_type            => 'GeoLite2-Country',
	languages                => ['en'],
	description              => { en => 'gatekeeper test countries' },
	map_key_type_callback    => sub { $types{ $_[0] } },
	remove_reserved_networks => 0,
	alias_ipv6_to_ipv4       => 1,
);
for my $arg (@ARGV) {
	my ($cidr, $cc) = split /=/, $arg, 2;
	die "bad argument '$arg'\n" unless defined $cc;
	my $data = $cc eq '-' ?
	    { names => { en => 'no country' } } :
	    { country => { iso_code => $cc, names => { en => $cc } } };
	$tree->insert_network($cidr, $data);
}
open my $fh, '>:raw', "$out.tmp" or die "$out.tmp: $!\n";
$tree->write_tree($fh);
close $fh or die "$out.tmp: $!\n";
rename "$out.tmp", $out or die "$out: $!\n";
