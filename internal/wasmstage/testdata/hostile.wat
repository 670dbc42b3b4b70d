;; hostile.wat: a module for the host tests. hs_process behaves according
;; to the snapshot time (the i64 at offset 16 of the input header, i.e. the
;; snapshot name): 0 (or any unknown mode) answers correctly with one metric
;; P.daemon.calls = number of calls since instantiation, the others
;; misbehave in one way each.
(module
  (import "hs" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global $calls (mut i32) (i32.const 0))
  (global $inits (mut i32) (i32.const 0))

  ;; 1024: valid output, one daemon metric "calls" (value stored at 1048).
  (data (i32.const 1024) "HSO1\00\00\00\00\01\00\00\00\00\00\00\00"
                         "\01\00\00\00\00\00\05\00" "\00\00\00\00\00\00\00\00" "calls")
  ;; 1100: claims a billion metrics.
  (data (i32.const 1100) "HSO1\00\00\00\00\00\ca\9a\3b\00\00\00\00")
  ;; 1200: a name holding a newline.
  (data (i32.const 1200) "HSO1\00\00\00\00\01\00\00\00\00\00\00\00"
                         "\01\00\00\00\00\00\09\00" "\00\00\00\00\00\00\f0\3f" "evil\0aline")
  ;; 1300: a name holding a space.
  (data (i32.const 1300) "HSO1\00\00\00\00\01\00\00\00\00\00\00\00"
                         "\01\00\00\00\00\00\09\00" "\00\00\00\00\00\00\f0\3f" "evil name")
  ;; 1400: bad magic.
  (data (i32.const 1400) "XXXX\00\00\00\00\00\00\00\00\00\00\00\00")
  ;; 1500: the module reports an error.
  (data (i32.const 1500) "HSO1\01\00\00\00\04\00\00\00\00\00\00\00" "boom")
  ;; 1600: unknown scope 9.
  (data (i32.const 1600) "HSO1\00\00\00\00\01\00\00\00\00\00\00\00"
                         "\09\00\00\00\00\00\01\00" "\00\00\00\00\00\00\f0\3f" "x")
  ;; 1700: a free path with an empty segment.
  (data (i32.const 1700) "HSO1\00\00\00\00\01\00\00\00\00\00\00\00"
                         "\07\00\00\00\00\00\04\00" "\00\00\00\00\00\00\f0\3f" "a..b")
  ;; 1800: a log message.
  (data (i32.const 1800) "hello")
  ;; 1900: claims two metrics, holds one.
  (data (i32.const 1900) "HSO1\00\00\00\00\02\00\00\00\00\00\00\00"
                         "\01\00\00\00\00\00\01\00" "\00\00\00\00\00\00\f0\3f" "x")
  ;; 2000: the column list.
  (data (i32.const 2000) "scur stot")

  (func (export "hs_abi_version") (result i32) (i32.const 1))

  (func (export "hs_columns") (result i64)
    (i64.or (i64.shl (i64.const 2000) (i64.const 32)) (i64.const 9)))

  (func (export "hs_init") (param $ptr i32) (param $len i32) (result i32)
    (global.set $inits (i32.add (global.get $inits) (i32.const 1)))
    (i32.const 0))

  ;; The input goes at 64 KiB; memory grows to hold it.
  (func (export "hs_alloc") (param $size i32) (result i32)
    (local $need i32)
    (local.set $need (i32.shr_u (i32.add (local.get $size) (i32.const 131071)) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then unreachable))))
    (i32.const 65536))

  (func $packed (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len))))

  (func (export "hs_process") (param $ptr i32) (param $len i32) (result i64)
    (local $mode i64)
    (local $i i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (local.set $mode (i64.load offset=16 (local.get $ptr)))
    ;; 1: infinite loop.
    (if (i64.eq (local.get $mode) (i64.const 1))
      (then (loop $forever (br $forever))))
    ;; 2: memory growth without end; trap when the host refuses.
    (if (i64.eq (local.get $mode) (i64.const 2))
      (then
        (loop $grow
          (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1))
            (then unreachable))
          (br $grow))))
    ;; 3: trap.
    (if (i64.eq (local.get $mode) (i64.const 3))
      (then unreachable))
    ;; 4: output pointer outside memory.
    (if (i64.eq (local.get $mode) (i64.const 4))
      (then (return (call $packed (i32.const 0xffff0000) (i32.const 37)))))
    ;; 5: a billion metrics claimed.
    (if (i64.eq (local.get $mode) (i64.const 5))
      (then (return (call $packed (i32.const 1100) (i32.const 16)))))
    ;; 6: newline in a name.
    (if (i64.eq (local.get $mode) (i64.const 6))
      (then (return (call $packed (i32.const 1200) (i32.const 41)))))
    ;; 7: space in a name.
    (if (i64.eq (local.get $mode) (i64.const 7))
      (then (return (call $packed (i32.const 1300) (i32.const 41)))))
    ;; 8: output length outside memory.
    (if (i64.eq (local.get $mode) (i64.const 8))
      (then (return (call $packed (i32.const 1024) (i32.const 0x7fffffff)))))
    ;; 9: bad magic.
    (if (i64.eq (local.get $mode) (i64.const 9))
      (then (return (call $packed (i32.const 1400) (i32.const 16)))))
    ;; 10: trailing bytes after the last metric.
    (if (i64.eq (local.get $mode) (i64.const 10))
      (then (return (call $packed (i32.const 1024) (i32.const 40)))))
    ;; 11: error reported by the module.
    (if (i64.eq (local.get $mode) (i64.const 11))
      (then (return (call $packed (i32.const 1500) (i32.const 20)))))
    ;; 12: unknown scope.
    (if (i64.eq (local.get $mode) (i64.const 12))
      (then (return (call $packed (i32.const 1600) (i32.const 33)))))
    ;; 13: empty path segment.
    (if (i64.eq (local.get $mode) (i64.const 13))
      (then (return (call $packed (i32.const 1700) (i32.const 36)))))
    ;; 14: log flood, then a correct answer.
    (if (i64.eq (local.get $mode) (i64.const 14))
      (then
        (loop $flood
          (call $log (i32.const 2) (i32.const 1800) (i32.const 5))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $flood (i32.lt_u (local.get $i) (i32.const 1000))))))
    ;; 15: truncated record.
    (if (i64.eq (local.get $mode) (i64.const 15))
      (then (return (call $packed (i32.const 1900) (i32.const 33)))))
    ;; 16: log with a pointer outside memory, then a correct answer.
    (if (i64.eq (local.get $mode) (i64.const 16))
      (then (call $log (i32.const 3) (i32.const 0xfffffff0) (i32.const 100))))
    ;; 17: no metrics.
    (if (i64.eq (local.get $mode) (i64.const 17))
      (then (return (i64.const 0))))
    (f64.store (i32.const 1048) (f64.convert_i32_u (global.get $calls)))
    (call $packed (i32.const 1024) (i32.const 37)))
)
