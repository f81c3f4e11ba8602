#!/usr/bin/perl
# rewrite.pl IN OUT: a CUDA source of core/cuda/ for the CUDA emulation (tests/cuda-emu/cuda_runtime.h):
#  - each launch kernel[<template args>]<<<grid, block[, shared, stream]>>>(args) becomes
#    emu_launch(&kernel, grid, block[, shared, stream])(args) (arguments converted and copied at the launch);
#  - each kernel whose own body uses __shfl_*, __syncthreads or __shared__, or calls a __device__ function of the
#    module (any source beside IN) that does, directly or through another, is registered as cooperative (run with its
#    real block size, one fiber per thread) by a static emu_coop_reg right after its definition; for a kernel template,
#    one per instantiation that this file launches (one launched from another file would run serially, and its
#    barriers or wmma calls abort there);
#  - `extern __shared__ [__align__(n)] T name[];` (dynamic shared memory) becomes `T *name = (T *)emu_dynamic_shared();`;
#  - each `__shared__ T name[...];` is followed by `emu_shared_fresh(&name, sizeof name);` (0xff at each block).
# Everything else is copied as it is.
use strict;
use warnings;
use File::Basename qw(dirname);
my ($in, $out) = @ARGV;
open(my $f, '<', $in) or die "rewrite.pl: $in: $!\n";
local $/;
my $s = <$f>;
close $f;
my $parens = qr/(\((?:[^()]++|(?-1))*+\))/;
my $braces = qr/(\{(?:[^{}]++|(?-1))*+\})/;
my $targs = qr/<[\w:, ]+>/;
my $coop_use = qr/__shfl_\w*sync|__syncthreads|__shared__/;
# The module's __device__ functions that synchronise, from every source beside IN (a kernel may call one defined in
# another file), closed over calls among them.
my (%dev, %sync);
for my $src (glob(dirname($in) . '/*.cu'), glob(dirname($in) . '/*.cuh')) {
    open(my $h, '<', $src) or die "rewrite.pl: $src: $!\n";
    my $t = <$h>;
    close $h;
    while ($t =~ /__device__\s+(?:[\w:<>*&]+\s+)*?(\w+)\s*$parens\s*(?:const\s*)?$braces/g) {
        my ($name, $body) = ($1, $3);
        $dev{$name} = $body;
        $sync{$name} = 1 if $body =~ $coop_use;
    }
}
for (my $grew = 1; $grew;) {
    $grew = 0;
    for my $name (keys %dev) {
        next if $sync{$name};
        for my $callee (keys %sync) {
            if ($dev{$name} =~ /\b\Q$callee\E\s*\(/) {
                $sync{$name} = $grew = 1;
                last;
            }
        }
    }
}
my $sync_call = %sync ? '\b(?:' . join('|', map { quotemeta } sort keys %sync) . ')\s*\(' : '(?!)';
my %launched; # kernel template name -> its template argument lists launched in this file
while ($s =~ /(\w+)($targs)<<</g) { $launched{$1}{$2} = 1; }
$s =~ s{((template\s*<[^>]*>\s*)?__global__\s+(?:static\s+)?void\s+(?:__launch_bounds__\s*$parens\s*)?(\w+)\s*$parens\s*$braces)}{
    my ($def, $tpl, $name, $body) = ($1, $2, $4, $6);
    if ($body !~ $coop_use && $body !~ /$sync_call/) {
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
# What a block's static shared memory holds before it writes there is undefined: each array is filled with 0xff bytes
# when a block first reaches its declaration (emu_shared_fresh), so a read before a write shows.
$s =~ s/(__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s+)?[\w ]*?\w\s+(\w+)\s*(?:\[[^\]]*\])*\s*;)/$1 emu_shared_fresh(&$2, sizeof $2);/g;
my $launches = ($s =~ s/(\w+(?:$targs)?)<<<([^;]*?)>>>$parens/emu_launch(&$1, $2)$3/g) || 0;
die "rewrite.pl: $in: a launch was left unrewritten\n" if $s =~ /<<</;
open(my $g, '>', $out) or die "rewrite.pl: $out: $!\n";
print $g $s;
close $g or die "rewrite.pl: $out: $!\n";
