/* A fast gzip encoder for label masks (global `LLGzip`).
 *
 * A mask is almost all zero bytes. CompressionStream deflates 42 MB of it at ~100 MB/s
 * (~400 ms for 512x512x80 uint16); this encoder writes one fixed-Huffman deflate block in
 * which every run of equal bytes is a literal plus length-258 matches at distance 1, and
 * computes the CRC-32 of a zero run in O(log n) (multiplication by x^(8n) mod P, as
 * zlib's crc32_combine does), so it runs at memory speed. The output is ordinary gzip
 * (RFC 1951/1952) that any inflater reads. `LLGzip.selfTest()` round-trips a sample
 * through the browser's DecompressionStream before the encoder is trusted. */
(function () {
  "use strict";
  const POLY = 0xedb88320;
  const CRC_TABLE = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    CRC_TABLE[n] = c >>> 0;
  }
  function multmodp(a, b) {
    let m = 0x80000000, p = 0;
    for (;;) {
      if (a & m) {
        p = (p ^ b) >>> 0;
        if ((a & (m - 1)) === 0) break;
      }
      m >>>= 1;
      b = b & 1 ? ((b >>> 1) ^ POLY) >>> 0 : b >>> 1;
    }
    return p >>> 0;
  }
  const X2N = new Uint32Array(32);
  { let p = 0x40000000; X2N[0] = p; for (let n = 1; n < 32; n++) X2N[n] = p = multmodp(p, p); }
  function x2nmodp(n, k) {  // x^(n * 2^k) mod P
    let p = 0x80000000;
    while (n) {
      if (n & 1) p = multmodp(X2N[k & 31], p);
      n = Math.floor(n / 2);
      k++;
    }
    return p;
  }

  // Fixed Huffman codes, bit-reversed for an LSB-first bit writer.
  function rev(code, len) { let r = 0; for (let i = 0; i < len; i++) { r = (r << 1) | (code & 1); code >>= 1; } return r; }
  const LIT_CODE = new Uint16Array(288), LIT_LEN = new Uint8Array(288);
  for (let s = 0; s < 288; s++) {
    let code, len;
    if (s < 144) { code = 0x30 + s; len = 8; } else if (s < 256) { code = 0x190 + s - 144; len = 9; }
    else if (s < 280) { code = s - 256; len = 7; } else { code = 0xc0 + s - 280; len = 8; }
    LIT_CODE[s] = rev(code, len); LIT_LEN[s] = len;
  }
  const BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
  const EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
  const LEN_SYM = new Uint16Array(259), LEN_NX = new Uint8Array(259), LEN_XV = new Uint8Array(259);
  for (let i = 0; i < 28; i++) {
    for (let e = 0; e < 1 << EXTRA[i]; e++) {
      const L = BASE[i] + e;
      if (L > 258) break;
      LEN_SYM[L] = 257 + i; LEN_NX[L] = EXTRA[i]; LEN_XV[L] = e;
    }
  }
  LEN_SYM[258] = 285; LEN_NX[258] = 0; LEN_XV[258] = 0;

  function encode(input) {
    const u8 = input instanceof Uint8Array ? input : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    const n = u8.length;
    const aligned = u8.byteOffset % 4 === 0;
    const u32 = aligned ? new Uint32Array(u8.buffer, u8.byteOffset, n >>> 2) : null;
    let out = new Uint8Array(Math.max(1024, (n >>> 6) + 4096));
    let pos = 0, bitbuf = 0, bitcnt = 0;
    const grow = () => { const o = new Uint8Array(out.length * 2); o.set(out); out = o; };
    const put = (v, len) => {
      bitbuf |= v << bitcnt; bitcnt += len;
      while (bitcnt >= 8) { if (pos >= out.length) grow(); out[pos++] = bitbuf & 255; bitbuf >>>= 8; bitcnt -= 8; }
    };
    const lit = (b) => put(LIT_CODE[b], LIT_LEN[b]);
    const match = (L) => { const s = LEN_SYM[L]; put(LIT_CODE[s], LIT_LEN[s]); if (LEN_NX[L]) put(LEN_XV[L], LEN_NX[L]); put(0, 5); };
    // gzip header: magic, deflate, no flags, mtime 0, xfl 0, OS unknown
    out.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]); pos = 10;
    put(1, 1); put(1, 2);  // BFINAL, BTYPE = fixed Huffman
    let crc = 0xffffffff;
    let i = 0;
    while (i < n) {
      const b = u8[i];
      let j = i + 1;
      while (j < n && (j & 3) && u8[j] === b) j++;
      if (u32 && j < n && !(j & 3) && u8[j] === b) {
        const word = (b * 0x01010101) >>> 0;
        let w = j >>> 2; const wn = n >>> 2;
        while (w < wn && u32[w] === word) w++;
        j = w << 2;
      }
      while (j < n && u8[j] === b) j++;
      const run = j - i;
      if (b === 0 && run >= 16) crc = multmodp(x2nmodp(run, 3), crc);
      else for (let k = 0; k < run; k++) crc = CRC_TABLE[(crc ^ b) & 255] ^ (crc >>> 8);
      if (run >= 4) {
        lit(b);
        let rem = run - 1;
        while (rem >= 3) { const L = rem > 258 ? 258 : rem; if (rem - L === 1 || rem - L === 2) { const L2 = L - 3; match(L2); rem -= L2; continue; } match(L); rem -= L; }
        while (rem-- > 0) lit(b);
      } else {
        for (let k = 0; k < run; k++) lit(b);
      }
      i = j;
    }
    put(LIT_CODE[256], LIT_LEN[256]);  // end of block
    if (bitcnt > 0) put(0, 8 - bitcnt);
    crc = (crc ^ 0xffffffff) >>> 0;
    while (pos + 8 > out.length) grow();
    const dv = new DataView(out.buffer);
    dv.setUint32(pos, crc, true); dv.setUint32(pos + 4, n >>> 0, true); pos += 8;
    return out.subarray(0, pos);
  }

  let trusted = null;
  async function selfTest() {
    if (trusted !== null) return trusted;
    try {
      if (typeof DecompressionStream === "undefined") return (trusted = false);
      const sample = new Uint16Array(70000);
      for (let k = 0; k < sample.length; k++) if ((k % 997) < 40 || k % 31 === 0) sample[k] = (k * 7) % 9;
      sample.fill(3, 20000, 20600); sample[69999] = 12;
      const gz = encode(sample);
      const back = new Uint16Array(await new Response(new Blob([gz]).stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer());
      trusted = back.length === sample.length && back.every((v, k) => v === sample[k]);
    } catch (e) { trusted = false; }
    return trusted;
  }

  window.LLGzip = { encode, selfTest };
})();
