#!/usr/bin/env bash
# nolibm.sh LIBRARY: fails when the static library calls libm (exp, log,
# sqrt, pow, sin, cos, fma... and their float/long double forms) or BLAS.
# The replay path must compute the same bits on every machine, and those
# functions differ between libm and BLAS builds and CPUs.
set -u
lib=${1:?usage: nolibm.sh LIBRARY}
syms=$(nm --undefined-only "$lib") || { echo "nolibm: nm failed on $lib" >&2; exit 1; }
# Guard against checking the wrong file: the library must define the replay.
nm --defined-only "$lib" | grep -qw sfl_z_replay || { echo "nolibm: $lib has no sfl_z_replay" >&2; exit 1; }
math='(exp|exp2|expm1|log|log2|log10|log1p|sqrt|cbrt|pow|hypot|sin|cos|tan|asin|acos|atan|atan2|sinh|cosh|tanh|erf|erfc|lgamma|tgamma|fma)[fl]?'
bad=$(printf '%s\n' "$syms" | awk '{print $NF}' | grep -E "^(${math}|cblas_.*|[sdcz](gemm|gemv|axpy|dot|scal|nrm2)_?)$")
if [ -n "$bad" ]; then
    echo "nolibm: $lib calls:" $bad >&2
    exit 1
fi
echo "nolibm: $lib: no libm or BLAS calls ($(printf '%s\n' "$syms" | grep -c ' U ') undefined symbols checked)"
