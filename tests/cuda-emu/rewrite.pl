#!/usr/bin/perl
# rewrite.pl IN OUT: a CUDA source of core/cuda/ for the CUDA emulation (tests/cuda-emu/cuda_runtime.h):
#  - each launch kernel[<template args>]<<<grid, block[, shared, stream]>>>(args) becomes
#    emu_launch((const void *)&kernel, [&] { kernel(args); }, grid, block[, shared, stream]);
#  - each kernel whose own body uses __shfl_*, __syncthreads or __shared__ is registered as cooperative (run with its
#    real block size, one fiber per thread) by a static emu_coop_reg right after its definition; for a kernel template,
#    one per instantiation that this file launches (one launched from another file would run serially, and its
#    barriers or wmma calls abort there);
#  - `extern __shared__ [__align__(n)] T name[];` (dynamic shared memory) becomes `T *name = (T *)emu_dynamic_shared();`.
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
my $targs = qr/<[\w:, ]+>/;
my %launched; # kernel template name -> its template argument lists launched in this file
while ($s =~ /(\w+)($targs)<<</g) { $launched{$1}{$2} = 1; }
$s =~ s{((template\s*<[^>]*>\s*)?__global__\s+(?:static\s+)?void\s+(?:__launch_bounds__\s*$parens\s*)?(\w+)\s*$parens\s*$braces)}{
    my ($def, $tpl, $name, $body) = ($1, $2, $4, $6);
    if ($body !~ /__shfl_\w*sync|__syncthreads|__shared__/) {
        $def;
    } elsif (!$tpl) {
        "$def\nstatic emu_coop_reg emu_coop_$name((const void *)&$name);";
    } else {
        my $i = 0;
        $def . join('', map { "\nstatic emu_coop_reg emu_coop_${name}_" . $i++ . "((const void *)&$name$_);" }
                        sort keys %{$launched{$name} // {}});
    }
}ge;
$s =~ s/extern\s+__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s+)?([\w ]*?\w)\s+(\w+)\s*\[\s*\]\s*;/$1 *$2 = ($1 *)emu_dynamic_shared();/g;
my $launches = ($s =~ s/(\w+(?:$targs)?)<<<([^;]*?)>>>$parens/emu_launch((const void *)&$1, [&] { $1$3; }, $2)/g) || 0;
die "rewrite.pl: $in: a launch was left unrewritten\n" if $s =~ /<<</;
open(my $g, '>', $out) or die "rewrite.pl: $out: $!\n";
print $g $s;
close $g or die "rewrite.pl: $out: $!\n";
