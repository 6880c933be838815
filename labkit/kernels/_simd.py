"""Three AVX-512 inner loops that LLVM's vectorizer cannot find by itself, as numba intrinsics.

The integer and sparse kernels are numba loops that LLVM vectorizes. Three inner loops need an
instruction the vectorizer never picks from a plain loop, so they are written here directly in
LLVM IR (each an ``@intrinsic`` that numba inlines into the calling kernel):

- :func:`int4_group_dot`: ``vpdpbusd`` (AVX-512 VNNI) multiplies 4 unsigned bytes by 4 signed bytes
  and adds the 4 products to an int32 lane, exactly. With two 4-bit codes per byte, taken apart by one
  mask and one shift, 16 rows × 8 codes cost 5 instructions, against 15 for the 16-bit multiplies
  the vectorizer makes. It is what llama.cpp's Q4 × Q8 dot products use on such CPUs.
  :func:`int4_group_dot_rows` does 4 activation rows per word taken apart (small batches).
- :func:`int8_tile_dot`: the same instruction in a register-blocked GEMM micro-kernel: 4 rows of
  activations × 4 output channels, 16 accumulators in registers while ``K`` streams by.
- :func:`nm24_block_dot`: ``vpermi2ps`` picks, for each of 16 kept weights, its partner in ``x`` from
  the 32 columns of its 8 groups (a permutation by register, no gather), then one fused multiply-add.

Each is used only when :data:`AVX512_VNNI` (or :data:`AVX512` for the 2:4 loop) says numba
compiles for a CPU that has the instructions: the host CPU with labkit's LLVM settings on
(``labkit.kernels._tuning``). Everywhere else (another CPU, ``NUMBA_CPU_NAME=generic``,
``LABKIT_LLVM_TUNING=0``) the kernels run their portable loops, which give the same integers (int4,
int8) or the same float32 sums up to rounding (2:4); the intrinsics then compile to a trap that the
kernels never reach (the instructions do not exist for that target). The kernels take the path as an
argument, so tests run both on a machine that has both.
"""

from __future__ import annotations

import llvmlite.binding as ll
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from . import _tuning

__all__ = [
    "AVX512",
    "AVX512_VNNI",
    "LANES",
    "PANEL_ROWS",
    "TILE_ROWS",
    "TILE_COLS",
    "CHUNK",
    "int4_group_dot",
    "int4_group_dot_rows",
    "X_ROWS",
    "int8_tile_dot",
    "nm24_block_dot",
]

LANES = 16  # int32 / float32 lanes of a 512-bit register
PANEL_ROWS = 128  # rows of an int4 panel (kernels.w4a8): 8 registers of 16 int32 accumulators


def _host_has(*features: str) -> bool:
    # A function of numba's target alone (which keys its on-disk cache), so cached code always matches.
    if not _tuning.STATE.startswith("on"):
        return False  # numba does not compile for this host's full feature set
    have = ll.get_host_cpu_features()
    return all(have.get(f, False) for f in features)


AVX512 = _host_has("avx512f")
AVX512_VNNI = _host_has("avx512f", "avx512bw", "avx512vnni")

_I8, _I32, _I64, _F32 = ir.IntType(8), ir.IntType(32), ir.IntType(64), ir.FloatType()
_V32 = ir.VectorType(_I32, LANES)
_VF = ir.VectorType(_F32, LANES)


def _splat(builder, value, vtype):
    one = builder.insert_element(ir.Constant(vtype, ir.Undefined), value, _I32(0))
    return builder.shuffle_vector(one, ir.Constant(vtype, ir.Undefined), ir.Constant(_V32, [0] * LANES))


def _data(context, builder, aryty, value):
    """The data pointer of a C-contiguous array argument."""
    return context.make_array(aryty)(context, builder, value).data


def _load(builder, ptr, index, vtype):
    """Load ``vtype`` from ``ptr + index`` elements (unaligned)."""
    p = builder.bitcast(builder.gep(ptr, [index]), vtype.as_pointer())
    return builder.load(p, align=1)


def _store(builder, ptr, index, value):
    """Store the vector ``value`` at ``ptr + index`` elements (unaligned)."""
    builder.store(value, builder.bitcast(builder.gep(ptr, [index]), value.type.as_pointer()), align=1)


def _splat_load(builder, ptr, index):
    """The int32 at ``ptr + index`` in every lane (for ``vpdpbusd``'s activation operand)."""
    return _splat(builder, builder.load(builder.gep(ptr, [index])), _V32)


def _function(builder, name, ret, args):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, args), name)


def _dpbusd(builder):
    """``vpdpbusd``: acc + the sums of 4 unsigned × signed byte products per int32 lane."""
    return _function(builder, "llvm.x86.avx512.vpdpbusd.512", _V32, [_V32, _V32, _V32])


def _nibbles(builder, words):
    """The codes of 16 words as two vectors of 4 bytes each: the low nibbles, then the high ones."""
    low_nibbles, four = ir.Constant(_V32, [0x0F0F0F0F] * LANES), ir.Constant(_V32, [4] * LANES)
    return builder.and_(words, low_nibbles), builder.and_(builder.lshr(words, four), low_nibbles)


def _trap(context, builder):
    """The body for a target without the instruction: stop the process if ever reached (never, by design)."""
    builder.call(_function(builder, "llvm.trap", ir.VoidType(), []), [])
    return context.get_dummy_value()


@intrinsic
def int4_group_dot(typingctx, acc, words, j0, j1, x32):
    """``acc[r] += sum over words j0 <= j < j1 of the 8 products of row r``: the int4 × int8 inner loop.

    acc : int32 array (PANEL_ROWS,), C-contiguous: the rows' running group sums.
    words : uint32 array (KW, PANEL_ROWS), C-contiguous: ``words[j, r]`` holds 8 codes of row r, byte
        m holding the codes of columns ``8j + m`` (low nibble) and ``8j + 4 + m`` (high nibble).
    x32 : int32 array (2 KW,): the int8 activations 4 to an int32 (``xq.view(np.int32)``), so
        ``x32[2j]`` holds columns ``8j .. 8j + 3`` and ``x32[2j + 1]`` columns ``8j + 4 .. 8j + 7``.

    Every product of a 4-bit code (0..15) and an int8 is summed exactly in int32. The caller checks
    the shapes (no bounds checks here).
    """
    sig = types.void(acc, words, types.intp, types.intp, x32)

    def codegen(context, builder, signature, args):
        if not AVX512_VNNI:
            return _trap(context, builder)
        acc_ty, words_ty, _, _, x_ty = signature.args
        pacc = _data(context, builder, acc_ty, args[0])
        pwords, pair = _data(context, builder, words_ty, args[1]), _data(context, builder, x_ty, args[4])
        dpbusd = _dpbusd(builder)
        n_vec = PANEL_ROWS // LANES
        # one accumulator per 16 rows, kept in registers for the whole loop over words
        totals = [cgutils.alloca_once_value(builder, _load(builder, pacc, _I64(LANES * v), _V32)) for v in range(n_vec)]
        with cgutils.for_range(builder, args[3], start=args[2]) as j:
            first = builder.mul(j.index, _I64(2))
            x_lo, x_hi = _splat_load(builder, pair, first), _splat_load(builder, pair, builder.add(first, _I64(1)))
            row = builder.mul(j.index, _I64(PANEL_ROWS))
            for v, total in enumerate(totals):
                lo, hi = _nibbles(builder, _load(builder, pwords, builder.add(row, _I64(LANES * v)), _V32))
                a = builder.call(dpbusd, [builder.load(total), lo, x_lo])
                builder.store(builder.call(dpbusd, [a, hi, x_hi]), total)
        for v, total in enumerate(totals):
            _store(builder, pacc, _I64(LANES * v), builder.load(total))
        return context.get_dummy_value()

    return sig, codegen


X_ROWS = 4  # activation rows per call of int4_group_dot_rows


@intrinsic
def int4_group_dot_rows(typingctx, acc, words, j0, j1, x32):
    """:func:`int4_group_dot` for 4 activation rows at once: ``acc[b, r] += ...`` for b = 0 .. 3.

    acc : int32 array (4, PANEL_ROWS), C-contiguous. x32 : int32 array (4, 2 KW), C-contiguous.
    Each word of codes is loaded and taken apart once and used by the 4 rows (8 ``vpdpbusd``, their
    activations broadcast from memory), where 4 calls of :func:`int4_group_dot` would take it apart 4
    times: a small batch (decoding several sequences) costs less per row than one GEMV.
    """
    sig = types.void(acc, words, types.intp, types.intp, x32)

    def codegen(context, builder, signature, args):
        if not AVX512_VNNI:
            return _trap(context, builder)
        acc_ty, words_ty, _, _, x_ty = signature.args
        pacc = _data(context, builder, acc_ty, args[0])
        pwords = _data(context, builder, words_ty, args[1])
        x_ary = context.make_array(x_ty)(context, builder, args[4])
        px, x_len = x_ary.data, builder.extract_value(x_ary.shape, 1)
        dpbusd = _dpbusd(builder)
        for v in range(PANEL_ROWS // LANES):  # 16 panel rows at a time, 4 accumulators (one per x row)
            offsets = [_I64(b * PANEL_ROWS + v * LANES) for b in range(X_ROWS)]
            # low and high nibbles in separate accumulators: 8 independent chains hide vpdpbusd's latency
            lows = [cgutils.alloca_once_value(builder, _load(builder, pacc, off, _V32)) for off in offsets]
            highs = [cgutils.alloca_once_value(builder, ir.Constant(_V32, [0] * LANES)) for _ in offsets]
            with cgutils.for_range(builder, args[3], start=args[2]) as j:
                w = _load(builder, pwords, builder.add(builder.mul(j.index, _I64(PANEL_ROWS)), _I64(v * LANES)), _V32)
                lo, hi = _nibbles(builder, w)
                first = builder.mul(j.index, _I64(2))
                for b in range(X_ROWS):
                    row = builder.add(builder.mul(_I64(b), x_len), first)
                    x_lo, x_hi = _splat_load(builder, px, row), _splat_load(builder, px, builder.add(row, _I64(1)))
                    builder.store(builder.call(dpbusd, [builder.load(lows[b]), lo, x_lo]), lows[b])
                    builder.store(builder.call(dpbusd, [builder.load(highs[b]), hi, x_hi]), highs[b])
            for off, low, high in zip(offsets, lows, highs):
                _store(builder, pacc, off, builder.add(builder.load(low), builder.load(high)))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def nm24_block_dot(typingctx, values, meta, x, n_blocks):
    """``sum_i values[i] · x[column of value i]`` over the first ``16 · n_blocks`` kept values of a 2:4 row.

    values : float32 array (K/2,), C-contiguous: the row's kept values, 2 per group of 4 columns.
    meta : uint8 array (ceil(K/8),): 2 bits per kept value (its position 0..3 inside its group), so
        4 bytes hold the positions of 16 values; value ``i`` of a block sits in bits ``2i, 2i + 1``.
    x : float32 array (K,), C-contiguous.

    Each block of 16 values covers 32 columns of ``x``, two registers. Value ``i``'s column inside
    the block is ``4 · (i // 2) + position``; ``vpermi2ps`` takes the 16 partners from the two
    registers by those indices, and one fused multiply-add per block accumulates (two accumulators,
    even and odd blocks, summed at the end). Returns float32; the order of the sum differs from a
    plain loop, so the result equals it up to float32 rounding.
    """
    sig = types.float32(values, meta, x, types.intp)

    def codegen(context, builder, signature, args):
        if not AVX512:
            _trap(context, builder)
            return ir.Constant(_F32, 0.0)
        v_ty, m_ty, x_ty, _ = signature.args
        pv, pm = _data(context, builder, v_ty, args[0]), _data(context, builder, m_ty, args[1])
        px = _data(context, builder, x_ty, args[2])
        permute = _function(builder, "llvm.x86.avx512.vpermi2var.ps.512", _VF, [_VF, _V32, _VF])
        fma = _function(builder, "llvm.fma.v16f32", _VF, [_VF, _VF, _VF])
        shifts = ir.Constant(_V32, [2 * i for i in range(LANES)])
        group_base = ir.Constant(_V32, [4 * (i // 2) for i in range(LANES)])
        three = ir.Constant(_V32, [3] * LANES)
        zero = ir.Constant(_VF, [0.0] * LANES)
        sums = [cgutils.alloca_once_value(builder, zero) for _ in range(2)]

        def block(b, total):
            bits = builder.load(builder.bitcast(builder.gep(pm, [builder.mul(b, _I64(4))]), _I32.as_pointer()), align=1)
            index = builder.add(builder.and_(builder.lshr(_splat(builder, bits, _V32), shifts), three), group_base)
            x_lo = _load(builder, px, builder.mul(b, _I64(2 * LANES)), _VF)
            x_hi = _load(builder, px, builder.add(builder.mul(b, _I64(2 * LANES)), _I64(LANES)), _VF)
            partners = builder.call(permute, [x_lo, index, x_hi])
            kept = _load(builder, pv, builder.mul(b, _I64(LANES)), _VF)
            builder.store(builder.call(fma, [kept, partners, builder.load(total)]), total)

        n_pairs = builder.udiv(args[3], _I64(2))
        with cgutils.for_range(builder, n_pairs) as pair:
            first = builder.mul(pair.index, _I64(2))
            block(first, sums[0])
            block(builder.add(first, _I64(1)), sums[1])
        with builder.if_then(builder.icmp_unsigned("!=", builder.mul(n_pairs, _I64(2)), args[3])):
            block(builder.sub(args[3], _I64(1)), sums[0])
        total = builder.fadd(builder.load(sums[0]), builder.load(sums[1]))
        result = builder.extract_element(total, _I32(0))
        for i in range(1, LANES):
            result = builder.fadd(result, builder.extract_element(total, _I32(i)))
        return result

    return sig, codegen


TILE_ROWS, TILE_COLS = 4, 4  # the int8 micro-kernel's tile: 4 rows of A × 4 output channels
CHUNK = 64  # bytes of a row that one 512-bit register holds


@intrinsic
def int8_tile_dot(typingctx, tile, a8, i0, b8, j0, n_chunks):
    """``tile[r, c] = sum_k a8[i0 + r, k] · b8[j0 + c, k]`` over the first ``64 · n_chunks`` columns.

    tile : int32 array (4, 4), C-contiguous: written.
    a8 : uint8 array (M_pad, K), C-contiguous: unsigned activations (rows ``i0 .. i0 + 3`` exist).
    b8 : int8 array (N, K), C-contiguous: the weights, out × in, as stored (no packing); rows past
        the end are clamped to the last row (their sums are computed and not used).

    The micro-kernel of the int8 GEMM: 4 rows × 4 channels = 16 accumulators in registers. Each step
    loads 64 bytes of each of the 4 activation rows and 4 weight rows and issues 16 ``vpdpbusd``
    (unsigned × signed bytes, 4 products added to each int32 lane); at the end each accumulator's 16
    lanes are added. Exact in int32 (modulo 2³², so exact whenever the true sums fit).
    """
    sig = types.void(tile, a8, types.intp, b8, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        if not AVX512_VNNI:
            return _trap(context, builder)
        t_ty, a_ty, _, b_ty, _, _ = signature.args
        ptile = _data(context, builder, t_ty, args[0])
        a_ary, b_ary = (
            context.make_array(a_ty)(context, builder, args[1]),
            context.make_array(b_ty)(context, builder, args[3]),
        )
        k_len = builder.extract_value(a_ary.shape, 1)
        last_row = builder.sub(builder.extract_value(b_ary.shape, 0), _I64(1))
        dpbusd = _dpbusd(builder)
        reduce = _function(builder, "llvm.vector.reduce.add.v16i32", _I32, [_V32])
        zero = ir.Constant(_V32, [0] * LANES)
        acc = [[cgutils.alloca_once_value(builder, zero) for _ in range(TILE_COLS)] for _ in range(TILE_ROWS)]
        a_rows = [builder.mul(builder.add(args[2], _I64(r)), k_len) for r in range(TILE_ROWS)]
        b_rows = []
        for c in range(TILE_COLS):
            j = builder.add(args[4], _I64(c))
            b_rows.append(builder.mul(builder.select(builder.icmp_signed(">", j, last_row), last_row, j), k_len))
        with cgutils.for_range(builder, args[5]) as step:
            k = builder.mul(step.index, _I64(CHUNK))
            a = [_load(builder, a_ary.data, builder.add(row, k), _V32) for row in a_rows]
            b = [_load(builder, b_ary.data, builder.add(row, k), _V32) for row in b_rows]
            for r in range(TILE_ROWS):
                for c in range(TILE_COLS):
                    builder.store(builder.call(dpbusd, [builder.load(acc[r][c]), a[r], b[c]]), acc[r][c])
        for r in range(TILE_ROWS):
            for c in range(TILE_COLS):
                out = builder.gep(ptile, [_I64(r * TILE_COLS + c)])
                builder.store(builder.call(reduce, [builder.load(acc[r][c])]), out)
        return context.get_dummy_value()

    return sig, codegen
