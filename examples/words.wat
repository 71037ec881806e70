;; Word counting for examples/words.ts: the scan and the table in WebAssembly.
;;
;; Why: in JavaScript the scan alone ran at about 5 ns a character on the
;; 2-core bench machine, and the table another 30-45 ns a word; together they
;; were 60 % of wc's time. Here the scan takes 64 bytes at a time with SIMD
;; while they are ASCII, and a word is hashed and compared 8 bytes at a time.
;;
;; Memory (imported, laid out by words.ts):
;;   [0, 0x2000)         one bit per BMP code point, set for letters (\p{L})
;;   [0x2000, 0x2080)    a byte per ASCII character, 1 for letters (made by begin)
;;   [buffer, +size)     a piece of the text, UTF-8, cut between words by words.ts
;;   [heap, ...)         hash tables and a copy of each distinct word, bump-allocated;
;;                       a grown table leaves the old one behind
;; A table of cap slots is cap 16-byte slots, then cap 4-byte counts. A slot:
;; the word's first 8 bytes (zero-padded), the address of its copy, its
;; length in bytes (0: empty). The text goes through the buffer a piece at a
;; time, so the memory holds the distinct words, not the whole text.
;;
;; A letter is a valid UTF-8 sequence whose code point has its bit set, or,
;; past the BMP (rare in text), that the imported astral_letter accepts. The
;; text comes from TextEncoder, so it is valid UTF-8; were it not, an invalid
;; byte would be a non-letter on its own, as the WHATWG decoder's U+FFFD is.
;; In ASCII the letters are A-Z and a-z only (the unit test checks the bits
;; agree), which is what the SIMD test computes.
(module
  (import "env" "memory" (memory 1))
  (import "env" "astral_letter" (func $astral_letter (param i32) (result i32)))
  (global $table (mut i32) (i32.const 0))
  (global $mask (mut i32) (i32.const 0))
  (global $size (mut i32) (i32.const 0))
  (global $top (mut i32) (i32.const 0))

  (func $is_letter (param $cp i32) (result i32)
    (i32.and
      (i32.shr_u (i32.load8_u (i32.shr_u (local.get $cp) (i32.const 3))) (i32.and (local.get $cp) (i32.const 7)))
      (i32.const 1)))

  ;; Bytes in the letter at $i when it is a letter; 0 otherwise. For $i < $end, $b = the byte at $i, $b >= 0x80.
  (func $wide_letter_len (param $i i32) (param $end i32) (param $b i32) (result i32)
    (local $b1 i32) (local $b2 i32) (local $b3 i32) (local $lo i32) (local $hi i32)
    (if (i32.lt_u (local.get $b) (i32.const 0xc2)) (then (return (i32.const 0))))
    (if (i32.lt_u (local.get $b) (i32.const 0xe0))
      (then
        (if (i32.ge_u (i32.add (local.get $i) (i32.const 1)) (local.get $end)) (then (return (i32.const 0))))
        (local.set $b1 (i32.load8_u offset=1 (local.get $i)))
        (if (i32.ne (i32.and (local.get $b1) (i32.const 0xc0)) (i32.const 0x80)) (then (return (i32.const 0))))
        (return (i32.shl
          (call $is_letter (i32.or
            (i32.shl (i32.and (local.get $b) (i32.const 0x1f)) (i32.const 6))
            (i32.and (local.get $b1) (i32.const 0x3f))))
          (i32.const 1)))))
    (if (i32.lt_u (local.get $b) (i32.const 0xf0))
      (then
        (if (i32.ge_u (i32.add (local.get $i) (i32.const 2)) (local.get $end)) (then (return (i32.const 0))))
        (local.set $b1 (i32.load8_u offset=1 (local.get $i)))
        (local.set $b2 (i32.load8_u offset=2 (local.get $i)))
        ;; E0 needs A0-BF next (no overlong forms), ED 80-9F (no surrogates)
        (local.set $lo (select (i32.const 0xa0) (i32.const 0x80) (i32.eq (local.get $b) (i32.const 0xe0))))
        (local.set $hi (select (i32.const 0x9f) (i32.const 0xbf) (i32.eq (local.get $b) (i32.const 0xed))))
        (if (i32.or (i32.lt_u (local.get $b1) (local.get $lo)) (i32.gt_u (local.get $b1) (local.get $hi))) (then (return (i32.const 0))))
        (if (i32.ne (i32.and (local.get $b2) (i32.const 0xc0)) (i32.const 0x80)) (then (return (i32.const 0))))
        (return (i32.mul
          (call $is_letter (i32.or (i32.or
            (i32.shl (i32.and (local.get $b) (i32.const 0x0f)) (i32.const 12))
            (i32.shl (i32.and (local.get $b1) (i32.const 0x3f)) (i32.const 6)))
            (i32.and (local.get $b2) (i32.const 0x3f))))
          (i32.const 3)))))
    (if (i32.lt_u (local.get $b) (i32.const 0xf5))
      (then
        (if (i32.ge_u (i32.add (local.get $i) (i32.const 3)) (local.get $end)) (then (return (i32.const 0))))
        (local.set $b1 (i32.load8_u offset=1 (local.get $i)))
        (local.set $b2 (i32.load8_u offset=2 (local.get $i)))
        (local.set $b3 (i32.load8_u offset=3 (local.get $i)))
        ;; F0 needs 90-BF next (no overlong forms), F4 80-8F (nothing past U+10FFFF)
        (local.set $lo (select (i32.const 0x90) (i32.const 0x80) (i32.eq (local.get $b) (i32.const 0xf0))))
        (local.set $hi (select (i32.const 0x8f) (i32.const 0xbf) (i32.eq (local.get $b) (i32.const 0xf4))))
        (if (i32.or (i32.lt_u (local.get $b1) (local.get $lo)) (i32.gt_u (local.get $b1) (local.get $hi))) (then (return (i32.const 0))))
        (if (i32.ne (i32.and (local.get $b2) (i32.const 0xc0)) (i32.const 0x80)) (then (return (i32.const 0))))
        (if (i32.ne (i32.and (local.get $b3) (i32.const 0xc0)) (i32.const 0x80)) (then (return (i32.const 0))))
        (return (i32.shl
          (call $astral_letter (i32.or (i32.or (i32.or
            (i32.shl (i32.and (local.get $b) (i32.const 0x07)) (i32.const 18))
            (i32.shl (i32.and (local.get $b1) (i32.const 0x3f)) (i32.const 12)))
            (i32.shl (i32.and (local.get $b2) (i32.const 0x3f)) (i32.const 6)))
            (i32.and (local.get $b3) (i32.const 0x3f))))
          (i32.const 2)))))
    (i32.const 0))

  ;; A zeroed table of $cap slots (a power of 2) at the top of the heap.
  (func $new_table (param $cap i32)
    (local $bytes i32)
    (local.set $bytes (i32.mul (local.get $cap) (i32.const 20)))
    ;; 16-aligned: the words kept before it have any length
    (global.set $top (i32.and (i32.add (global.get $top) (i32.const 15)) (i32.const -16)))
    (call $reserve (local.get $bytes))
    (memory.fill (global.get $top) (i32.const 0) (local.get $bytes))
    (global.set $table (global.get $top))
    (global.set $mask (i32.sub (local.get $cap) (i32.const 1)))
    (global.set $top (i32.add (global.get $top) (local.get $bytes))))

  ;; The first 8 bytes of the word at $at, zero past its $len.
  (func $prefix (param $at i32) (param $len i32) (result i64)
    (if (result i64) (i32.ge_u (local.get $len) (i32.const 8))
      (then (i64.load (local.get $at)))
      (else (i64.and
        (i64.load (local.get $at))
        (i64.sub (i64.shl (i64.const 1) (i64.extend_i32_u (i32.shl (local.get $len) (i32.const 3)))) (i64.const 1))))))

  ;; Hash of a word from its prefix; words over 8 bytes mix in the rest.
  (func $hash (param $at i32) (param $len i32) (param $prefix i64) (result i32)
    (local $h i64) (local $j i32) (local $rest i32)
    (local.set $h (i64.mul
      (i64.xor (local.get $prefix) (i64.extend_i32_u (local.get $len)))
      (i64.const 0x9e3779b97f4a7c15)))
    (local.set $j (i32.const 8))
    (block $done
      (loop $more
        (br_if $done (i32.ge_u (local.get $j) (local.get $len)))
        (local.set $rest (i32.sub (local.get $len) (local.get $j)))
        (local.set $h (i64.mul
          (i64.xor (i64.rotl (local.get $h) (i64.const 29))
            (call $prefix (i32.add (local.get $at) (local.get $j)) (local.get $rest)))
          (i64.const 0x9e3779b97f4a7c15)))
        (local.set $j (i32.add (local.get $j) (i32.const 8)))
        (br $more)))
    (i32.wrap_i64 (i64.shr_u (local.get $h) (i64.const 32))))

  (func $grow
    (local $old i32) (local $cap i32) (local $n i32) (local $p i32) (local $slot i32) (local $len i32)
    (local.set $old (global.get $table))
    (local.set $cap (i32.add (global.get $mask) (i32.const 1)))
    (call $new_table (i32.shl (local.get $cap) (i32.const 1)))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $n) (local.get $cap)))
        (local.set $len (i32.load offset=12 (i32.add (local.get $old) (i32.shl (local.get $n) (i32.const 4)))))
        (if (local.get $len)
          (then
            (local.set $slot (i32.add (local.get $old) (i32.shl (local.get $n) (i32.const 4))))
            (local.set $p (i32.and
              (call $hash (i32.load offset=8 (local.get $slot)) (local.get $len) (i64.load (local.get $slot)))
              (global.get $mask)))
            (loop $probe
              (if (i32.load offset=12 (i32.add (global.get $table) (i32.shl (local.get $p) (i32.const 4))))
                (then
                  (local.set $p (i32.and (i32.add (local.get $p) (i32.const 1)) (global.get $mask)))
                  (br $probe))))
            (memory.copy (i32.add (global.get $table) (i32.shl (local.get $p) (i32.const 4))) (local.get $slot) (i32.const 16))
            (i32.store
              (i32.add (i32.add (global.get $table) (i32.shl (i32.add (global.get $mask) (i32.const 1)) (i32.const 4))) (i32.shl (local.get $p) (i32.const 2)))
              (i32.load (i32.add (i32.add (local.get $old) (i32.shl (local.get $cap) (i32.const 4))) (i32.shl (local.get $n) (i32.const 2)))))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $each))))

  (func $same (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $tail
      (loop $eight
        (br_if $tail (i32.lt_u (local.get $n) (i32.const 8)))
        (if (i64.ne (i64.load (local.get $a)) (i64.load (local.get $b))) (then (return (i32.const 0))))
        (local.set $a (i32.add (local.get $a) (i32.const 8)))
        (local.set $b (i32.add (local.get $b) (i32.const 8)))
        (local.set $n (i32.sub (local.get $n) (i32.const 8)))
        (br $eight)))
    (block $done
      (loop $one
        (br_if $done (i32.eqz (local.get $n)))
        (if (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))) (then (return (i32.const 0))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $one)))
    (i32.const 1))

  ;; Room for $bytes more at the top of the heap, and 16 readable bytes past them.
  (func $reserve (param $bytes i32)
    (local $need i32) (local $have i32)
    (local.set $need (i32.add (i32.add (global.get $top) (local.get $bytes)) (i32.const 16)))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (local.get $have))
      (then
        (if (i32.lt_s
              (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $need) (local.get $have)) (i32.const 0xffff)) (i32.const 16)))
              (i32.const 0))
          (then unreachable)))))

  ;; A copy of a new word's bytes on the heap, where the table points: the text's buffer is reused.
  (func $keep (param $at i32) (param $len i32) (result i32)
    (local $copy i32)
    (call $reserve (local.get $len))
    (local.set $copy (global.get $top))
    (memory.copy (local.get $copy) (local.get $at) (local.get $len))
    (global.set $top (i32.add (local.get $copy) (local.get $len)))
    (local.get $copy))

  ;; One more occurrence of the word at $at, $len bytes.
  (func $add (param $at i32) (param $len i32)
    (local $prefix i64) (local $p i32) (local $slot i32) (local $slen i32) (local $count i32)
    (local.set $prefix (call $prefix (local.get $at) (local.get $len)))
    (local.set $p (i32.and (call $hash (local.get $at) (local.get $len) (local.get $prefix)) (global.get $mask)))
    (loop $probe
      (local.set $slot (i32.add (global.get $table) (i32.shl (local.get $p) (i32.const 4))))
      (local.set $slen (i32.load offset=12 (local.get $slot)))
      (if (i32.eqz (local.get $slen))
        (then
          (i64.store (local.get $slot) (local.get $prefix))
          (i32.store offset=8 (local.get $slot) (call $keep (local.get $at) (local.get $len)))
          (i32.store offset=12 (local.get $slot) (local.get $len))
          (i32.store
            (i32.add (i32.add (global.get $table) (i32.shl (i32.add (global.get $mask) (i32.const 1)) (i32.const 4))) (i32.shl (local.get $p) (i32.const 2)))
            (i32.const 1))
          (global.set $size (i32.add (global.get $size) (i32.const 1)))
          ;; at most half full
          (if (i32.gt_u (i32.shl (global.get $size) (i32.const 1)) (global.get $mask)) (then (call $grow)))
          (return)))
      (if (i32.and
            (i64.eq (i64.load (local.get $slot)) (local.get $prefix))
            (i32.eq (local.get $slen) (local.get $len)))
        (then
          (if (if (result i32) (i32.le_u (local.get $len) (i32.const 8))
                (then (i32.const 1))
                (else (call $same (i32.add (i32.load offset=8 (local.get $slot)) (i32.const 8)) (i32.add (local.get $at) (i32.const 8)) (i32.sub (local.get $len) (i32.const 8)))))
            (then
              (local.set $count
                (i32.add (i32.add (global.get $table) (i32.shl (i32.add (global.get $mask) (i32.const 1)) (i32.const 4))) (i32.shl (local.get $p) (i32.const 2))))
              (i32.store (local.get $count) (i32.add (i32.load (local.get $count)) (i32.const 1)))
              (return)))))
      (local.set $p (i32.and (i32.add (local.get $p) (i32.const 1)) (global.get $mask)))
      (br $probe)))

  ;; Bit j set where byte j of the 16 at $at is an ASCII letter (meaningful when all 16 are ASCII).
  (func $ascii_letters (param $at i32) (result i64)
    (i64.extend_i32_u (i8x16.bitmask
      (i8x16.lt_u
        (i8x16.sub (v128.or (v128.load (local.get $at)) (i8x16.splat (i32.const 0x20))) (i8x16.splat (i32.const 0x61)))
        (i8x16.splat (i32.const 26))))))

  ;; Counts the words of the text in [$start, $end); the table starts at $heap (16-aligned), with 8
  ;; readable bytes past $end. Returns the number of distinct words.
  ;; An empty table at $heap (16-aligned), for the text scan() is given next.
  (func (export "begin") (param $heap i32)
    (local $i i32)
    ;; A byte per ASCII character after the bits: one load in the scalar loop.
    (loop $ascii
      (i32.store8 offset=0x2000 (local.get $i) (call $is_letter (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $ascii (i32.lt_u (local.get $i) (i32.const 0x80))))
    (global.set $top (local.get $heap))
    (global.set $size (i32.const 0))
    (call $new_table (i32.const 4096)))

  ;; Counts the words of the text in [$start, $end), which holds whole words (the caller cuts between them),
  ;; with 8 readable bytes past $end. Returns the number of distinct words so far.
  (func (export "scan") (param $start i32) (param $end i32) (result i32)
    (local $i i32) (local $k i32) (local $b i32) (local $w i32) (local $j i32) (local $limit i32)
    (local $m i64) (local $e i64)
    ;; $w: where the word being read began, -1 between words
    (local.set $w (i32.const -1))
    (local.set $i (local.get $start))
    (block $done
      (loop $chunks
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $limit (i32.add (local.get $i) (i32.const 64)))
        (if (i32.le_u (local.get $limit) (local.get $end))
          (then
            (if (i32.eqz (i32.or (i32.or
                  (i8x16.bitmask (v128.load (local.get $i)))
                  (i8x16.bitmask (v128.load offset=16 (local.get $i))))
                  (i32.or
                    (i8x16.bitmask (v128.load offset=32 (local.get $i)))
                    (i8x16.bitmask (v128.load offset=48 (local.get $i))))))
              (then
                (local.set $m (i64.or (i64.or
                  (call $ascii_letters (local.get $i))
                  (i64.shl (call $ascii_letters (i32.add (local.get $i) (i32.const 16))) (i64.const 16)))
                  (i64.or
                    (i64.shl (call $ascii_letters (i32.add (local.get $i) (i32.const 32))) (i64.const 32))
                    (i64.shl (call $ascii_letters (i32.add (local.get $i) (i32.const 48))) (i64.const 48)))))
                ;; bits where a byte differs from the one before it: word starts and ends, alternating
                (local.set $e (i64.xor (local.get $m)
                  (i64.or (i64.shl (local.get $m) (i64.const 1)) (i64.extend_i32_u (i32.ne (local.get $w) (i32.const -1))))))
                (block $events_done
                  (loop $events
                    (br_if $events_done (i64.eqz (local.get $e)))
                    (local.set $j (i32.add (local.get $i) (i32.wrap_i64 (i64.ctz (local.get $e)))))
                    (local.set $e (i64.and (local.get $e) (i64.sub (local.get $e) (i64.const 1))))
                    (if (i32.eq (local.get $w) (i32.const -1))
                      (then (local.set $w (local.get $j)))
                      (else
                        (call $add (local.get $w) (i32.sub (local.get $j) (local.get $w)))
                        (local.set $w (i32.const -1))))
                    (br $events)))
                (local.set $i (local.get $limit))
                (br $chunks))))
          (else (local.set $limit (local.get $end))))
        ;; Byte by byte through these 64 (a letter may run a few bytes past them).
        (loop $scalar
          (local.set $b (i32.load8_u (local.get $i)))
          (local.set $k
            (if (result i32) (i32.lt_u (local.get $b) (i32.const 0x80))
              (then (i32.load8_u offset=0x2000 (local.get $b)))
              (else (call $wide_letter_len (local.get $i) (local.get $end) (local.get $b)))))
          (if (local.get $k)
            (then
              (if (i32.eq (local.get $w) (i32.const -1)) (then (local.set $w (local.get $i))))
              (local.set $i (i32.add (local.get $i) (local.get $k))))
            (else
              (if (i32.ne (local.get $w) (i32.const -1))
                (then
                  (call $add (local.get $w) (i32.sub (local.get $i) (local.get $w)))
                  (local.set $w (i32.const -1))))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))))
          (br_if $scalar (i32.lt_u (local.get $i) (local.get $limit))))
        (br $chunks)))
    (if (i32.ne (local.get $w) (i32.const -1))
      (then (call $add (local.get $w) (i32.sub (local.get $end) (local.get $w)))))
    (global.get $size))

  (func (export "table") (result i32) (global.get $table))
  (func (export "capacity") (result i32) (i32.add (global.get $mask) (i32.const 1)))
)
