;; greeting: the smallest complete weft module, written by hand in WebAssembly text.
;;
;; It exports `greet(name: string) -> string` and declares it in the `weft-interface` custom
;; section (format: docs/interface-section.md). `weft module add examples/modules/greeting.wat`
;; validates and stores it; `weft precompile` compiles it ahead of time.
;;
;; Calling convention (preliminary; the services issue fixes the final one): the caller asks
;; `allocate` for room, writes the argument's bytes there and calls `greet(ptr, len)`; the result
;; is `ptr << 32 | len` of "Hello, <name>!" in this module's memory, which the caller reads and
;; hands back with `release`.
(module
  (memory (export "memory") 1)
  ;; A bump allocator: enough for a module that answers a few calls per instance.
  (global $next (mut i32) (i32.const 1024))

  (func $allocate (export "allocate") (param $size i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (global.get $next))
    (global.set $next (i32.add (local.get $ptr) (local.get $size)))
    ;; Grow memory when the bump pointer passes its end.
    (if (i32.gt_u (global.get $next) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq
              (memory.grow (i32.add (i32.shr_u (local.get $size) (i32.const 16)) (i32.const 1)))
              (i32.const -1))
          (then unreachable))))
    (local.get $ptr))

  (func (export "release") (param $ptr i32) (param $size i32))

  (data (i32.const 16) "Hello, ")

  (func (export "greet") (param $name i32) (param $len i32) (result i64)
    (local $out i32)
    (local.set $out (call $allocate (i32.add (local.get $len) (i32.const 8))))
    (memory.copy (local.get $out) (i32.const 16) (i32.const 7))
    (memory.copy (i32.add (local.get $out) (i32.const 7)) (local.get $name) (local.get $len))
    (i32.store8 (i32.add (local.get $out) (i32.add (local.get $len) (i32.const 7))) (i32.const 33))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.add (local.get $len) (i32.const 8)))))

  ;; greet(name: string) -> string, byte for byte as in docs/interface-section.md:
  ;; version 1, item function, "greet", 1 parameter "name": string, 1 result: string.
  (@custom "weft-interface" "\01\00\05greet\01\04name\01\0b\01\01\0b")
)
