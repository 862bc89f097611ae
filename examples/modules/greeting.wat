;; greeting: a complete weft module written by hand in WebAssembly text, to show that the module
;; ABI (docs/module-abi.md) needs nothing but core Wasm. The Rust SDK writes all of this for you.
;;
;; It exports `greet(name: string) -> string` and declares it in the `weft-interface` custom
;; section (docs/interface-section.md). Values are postcard bytes: a string is
;; varint(length) followed by its UTF-8 bytes.
;;
;;   weft service create examples/blueprints/greeting.toml --alias greeting
;;   weft service call greeting greet '["Ann"]'        # -> "Hello, Ann!"
(module
  (memory (export "memory") 1)
  ;; Where free memory starts: a bump allocator whose `release` frees nothing. Enough for a module
  ;; whose instance lives for a few calls; a real module uses a real allocator (the SDK does).
  (global $next (mut i32) (i32.const 1024))

  ;; allocate(size) -> ptr: `size` fresh bytes, growing memory as needed.
  (func $allocate (export "allocate") (param $size i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (global.get $next))
    (global.set $next (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.gt_u (global.get $next) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq
              (memory.grow (i32.add (i32.shr_u (local.get $size) (i32.const 16)) (i32.const 1)))
              (i32.const -1))
          (then unreachable))))
    (local.get $ptr))

  ;; release(ptr, size): a bump allocator never frees.
  (func (export "release") (param $ptr i32) (param $size i32))

  ;; Reads the unsigned LEB128 varint at $ptr (at most 5 bytes, below $end); returns the value and
  ;; leaves the number of bytes it took in $taken. Traps on a truncated or over-long varint.
  (global $taken (mut i32) (i32.const 0))
  (func $read_varint (param $ptr i32) (param $end i32) (result i32)
    (local $value i32) (local $shift i32) (local $byte i32) (local $i i32)
    (loop $more
      (if (i32.or (i32.ge_u (i32.add (local.get $ptr) (local.get $i)) (local.get $end))
                  (i32.ge_u (local.get $i) (i32.const 5)))
        (then unreachable))
      (local.set $byte (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
      (local.set $value (i32.or (local.get $value)
        (i32.shl (i32.and (local.get $byte) (i32.const 0x7f)) (local.get $shift))))
      (local.set $shift (i32.add (local.get $shift) (i32.const 7)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.and (local.get $byte) (i32.const 0x80))))
    (global.set $taken (local.get $i))
    (local.get $value))

  ;; Writes $value as a varint at $ptr; returns the number of bytes written.
  (func $write_varint (param $ptr i32) (param $value i32) (result i32)
    (local $i i32)
    (loop $more
      (if (i32.ge_u (local.get $value) (i32.const 0x80))
        (then
          (i32.store8 (i32.add (local.get $ptr) (local.get $i))
            (i32.or (i32.and (local.get $value) (i32.const 0x7f)) (i32.const 0x80)))
          (local.set $value (i32.shr_u (local.get $value) (i32.const 7)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $more))))
    (i32.store8 (i32.add (local.get $ptr) (local.get $i)) (local.get $value))
    (i32.add (local.get $i) (i32.const 1)))

  (data (i32.const 16) "Hello, ")

  ;; greet(args_ptr, args_len) -> (ptr << 32) | len
  ;; The arguments are the tuple (name: string): varint(n), then n bytes. The result is the
  ;; string "Hello, <name>!" encoded the same way, in a buffer this module allocated; weft copies
  ;; it out and hands it back with `release`.
  (func (export "greet") (param $args i32) (param $args_len i32) (result i64)
    (local $n i32) (local $name i32) (local $text_len i32) (local $out i32) (local $head i32)
    (local.set $n (call $read_varint (local.get $args) (i32.add (local.get $args) (local.get $args_len))))
    (local.set $name (i32.add (local.get $args) (global.get $taken)))
    ;; weft checked the arguments against the interface, but a module should not trust that:
    ;; the name must lie within the arguments.
    (if (i32.gt_u (i32.add (local.get $name) (local.get $n)) (i32.add (local.get $args) (local.get $args_len)))
      (then unreachable))
    ;; "Hello, " (7) + name + "!" (1); the result's varint takes at most 5 bytes.
    (local.set $text_len (i32.add (local.get $n) (i32.const 8)))
    (local.set $out (call $allocate (i32.add (local.get $text_len) (i32.const 5))))
    (local.set $head (call $write_varint (local.get $out) (local.get $text_len)))
    (memory.copy (i32.add (local.get $out) (local.get $head)) (i32.const 16) (i32.const 7))
    (memory.copy (i32.add (local.get $out) (i32.add (local.get $head) (i32.const 7))) (local.get $name) (local.get $n))
    (i32.store8 (i32.add (local.get $out) (i32.add (local.get $head) (i32.add (local.get $n) (i32.const 7))))
      (i32.const 33))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.add (local.get $head) (local.get $text_len)))))

  ;; greet(name: string) -> string, byte for byte as in docs/interface-section.md:
  ;; version 1, item function, "greet", 1 parameter "name": string, 1 result: string.
  (@custom "weft-interface" "\01\00\05greet\01\04name\01\0b\01\01\0b")
)
