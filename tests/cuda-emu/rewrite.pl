#!/usr/bin/perl
# rewrite.pl IN.cuh OUT.cuh: kernel<<<grid, block[, shared, stream]>>>(args) -> LAUNCH_EMU(grid, ...) kernel(args),
# for the CUDA emulation (tests/cuda-emu/cuda_runtime.h). Everything else is copied as it is.
use strict;
use warnings;
my ($in, $out) = @ARGV;
open(my $f, '<', $in) or die "rewrite.pl: $in: $!\n";
local $/;
my $s = <$f>;
close $f;
$s =~ s/(\w+)<<<([^;]*?)>>>\(/LAUNCH_EMU($2) $1(/g;
open(my $g, '>', $out) or die "rewrite.pl: $out: $!\n";
print $g $s;
close $g or die "rewrite.pl: $out: $!\n";
