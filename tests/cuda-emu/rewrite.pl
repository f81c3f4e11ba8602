#!/usr/bin/perl
# rewrite.pl IN OUT: a CUDA source of core/cuda/ for the CUDA emulation (tests/cuda-emu/cuda_runtime.h):
#  - each launch kernel<<<grid, block[, shared, stream]>>>(args) becomes
#    emu_launch((const void *)&kernel, [&] { kernel(args); }, grid, block[, shared, stream]);
#  - each kernel whose own body uses __shfl_*, __syncthreads or __shared__ is registered as cooperative (run with its
#    real block size, one fiber per thread) by a static emu_coop_reg right after its definition.
# Everything else is copied as it is.
use strict;
use warnings;
my ($in, $out) = @ARGV;
open(my $f, '<', $in) or die "rewrite.pl: $in: $!\n";
local $/;
my $s = <$f>;
close $f;
my $parens = qr/(\((?:[^()]++|(?-1))*+\))/;
my $braces = qr/(\{(?:[^{}]++|(?-1))*+\})/;
my $coop = 0;
$s =~ s{(__global__\s+(?:static\s+)?void\s+(\w+)\s*$parens\s*$braces)}{
    my ($def, $name, $body) = ($1, $2, $4);
    if ($body =~ /__shfl_\w*sync|__syncthreads|__shared__/) {
        $coop++;
        "$def\nstatic emu_coop_reg emu_coop_$name((const void *)&$name);";
    } else {
        $def;
    }
}ge;
my $launches = ($s =~ s/(\w+)<<<([^;]*?)>>>$parens/emu_launch((const void *)&$1, [&] { $1$3; }, $2)/g) || 0;
die "rewrite.pl: $in: a launch was left unrewritten\n" if $s =~ /<<</;
open(my $g, '>', $out) or die "rewrite.pl: $out: $!\n";
print $g $s;
close $g or die "rewrite.pl: $out: $!\n";
