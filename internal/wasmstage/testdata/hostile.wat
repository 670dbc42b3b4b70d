;; hostile.wat: a module for the host tests. hs_process behaves according
;; to the snapshot time (the i64 at offset 16 of the input header, i.e. the
;; snapshot name): its low 16 bits are the mode, the rest a variant. Mode 0
;; (or any unknown mode) answers correctly with one metric P.daemon.calls =
;; number of calls since instantiation, the others misbehave in one way
;; each.
(module
  (import "hs" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (global $calls (mut i32) (i32.const 0))
  (global $inits (mut i32) (i32.const 0))
  ;; Log lines hs_alloc writes (set by mode 14 variant 1, for the next call).
  (global $allocLogs (mut i32) (i32.const 0))

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
  ;; 2100: no metrics, but the reserved header field is not 0.
  (data (i32.const 2100) "HSO1\00\00\00\00\00\00\00\00\01\00\00\00")

  (func (export "hs_abi_version") (result i32) (i32.const 1))

  (func (export "hs_columns") (result i64)
    (i64.or (i64.shl (i64.const 2000) (i64.const 32)) (i64.const 9)))

  (func (export "hs_init") (param $ptr i32) (param $len i32) (result i32)
    (global.set $inits (i32.add (global.get $inits) (i32.const 1)))
    (i32.const 0))

  ;; The input goes at 64 KiB; memory grows to hold it.
  (func (export "hs_alloc") (param $size i32) (result i32)
    (local $need i32)
    (local $i i32)
    (if (global.get $allocLogs)
      (then
        (loop $logs
          (call $log (i32.const 2) (i32.const 1800) (i32.const 5))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $logs (i32.lt_u (local.get $i) (global.get $allocLogs))))))
    (local.set $need (i32.shr_u (i32.add (local.get $size) (i32.const 131071)) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then unreachable))))
    (i32.const 65536))

  (func $packed (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len))))

  ;; Exponential recursion without a loop: never ends, and wazero's
  ;; cancellation checks (at loop headers) never see it.
  (func $fib (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))

  ;; An output of 60 daemon metrics with distinct 65,000-byte names (from
  ;; the record number and $variant) at 1 MiB, followed when $bad by a
  ;; record of unknown scope, which fails the whole output.
  (func $names (param $variant i32) (param $bad i32) (result i64)
    (local $i i32) (local $p i32)
    (if (i32.lt_u (memory.size) (i32.const 80))
      (then (drop (memory.grow (i32.sub (i32.const 80) (memory.size))))))
    (i32.store (i32.const 0x100000) (i32.const 0x314F5348))
    (i32.store (i32.const 0x100004) (i32.const 0))
    (i32.store (i32.const 0x100008) (i32.add (i32.const 60) (local.get $bad)))
    (i32.store (i32.const 0x10000c) (i32.const 0))
    (local.set $p (i32.const 0x100010))
    (loop $rec
      ;; scope 1, reserved 0, no object, no server, a 65,000-byte name
      (i32.store (local.get $p) (i32.const 1))
      (i32.store offset=4 (local.get $p) (i32.const 0xFDE80000))
      (f64.store offset=8 (local.get $p) (f64.const 1))
      (memory.fill (i32.add (local.get $p) (i32.const 16)) (i32.const 0x61) (i32.const 65000))
      (i32.store8 offset=16 (local.get $p) (i32.add (i32.const 0x61) (i32.rem_u (local.get $i) (i32.const 26))))
      (i32.store8 offset=17 (local.get $p) (i32.add (i32.const 0x61) (i32.div_u (local.get $i) (i32.const 26))))
      (i32.store8 offset=18 (local.get $p) (i32.add (i32.const 0x61) (i32.rem_u (local.get $variant) (i32.const 26))))
      (i32.store8 offset=19 (local.get $p) (i32.add (i32.const 0x61) (i32.rem_u (i32.div_u (local.get $variant) (i32.const 26)) (i32.const 26))))
      (local.set $p (i32.add (local.get $p) (i32.const 65016)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $rec (i32.lt_u (local.get $i) (i32.const 60))))
    (if (local.get $bad)
      (then
        (i32.store (local.get $p) (i32.const 9))
        (i32.store offset=4 (local.get $p) (i32.const 0x10000))
        (f64.store offset=8 (local.get $p) (f64.const 1))
        (i32.store8 offset=16 (local.get $p) (i32.const 0x78))
        (local.set $p (i32.add (local.get $p) (i32.const 17)))))
    (call $packed (i32.const 0x100000) (i32.sub (local.get $p) (i32.const 0x100000))))

  (func (export "hs_process") (param $ptr i32) (param $len i32) (result i64)
    (local $mode i64)
    (local $variant i32)
    (local $i i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (local.set $mode (i64.and (i64.load offset=16 (local.get $ptr)) (i64.const 0xffff)))
    (local.set $variant (i32.wrap_i64 (i64.shr_u (i64.load offset=16 (local.get $ptr)) (i64.const 16))))
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
    ;; 14: log flood, then a correct answer; variant 1: hs_alloc logs 25
    ;; lines at every later call.
    (if (i64.eq (local.get $mode) (i64.const 14))
      (then
        (if (i32.eq (local.get $variant) (i32.const 1))
          (then (global.set $allocLogs (i32.const 25))))
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
    ;; 18: loop-free exponential recursion.
    (if (i64.eq (local.get $mode) (i64.const 18))
      (then (return (i64.extend_i32_u (call $fib (i32.const 100))))))
    ;; 19: the output header's reserved field is not 0.
    (if (i64.eq (local.get $mode) (i64.const 19))
      (then (return (call $packed (i32.const 2100) (i32.const 16)))))
    ;; 20: 60 long distinct names, then a malformed record.
    (if (i64.eq (local.get $mode) (i64.const 20))
      (then (return (call $names (local.get $variant) (i32.const 1)))))
    ;; 21: 60 long distinct names.
    (if (i64.eq (local.get $mode) (i64.const 21))
      (then (return (call $names (local.get $variant) (i32.const 0)))))
    ;; 22: the table grows without end (table.grow is not bounded by the
    ;; memory limit); trap when the host refuses.
    (if (i64.eq (local.get $mode) (i64.const 22))
      (then
        (loop $tgrow
          (if (i32.eq (table.grow $t (ref.null func) (i32.const 1048576)) (i32.const -1))
            (then unreachable))
          (br $tgrow))))
    (f64.store (i32.const 1048) (f64.convert_i32_u (global.get $calls)))
    (call $packed (i32.const 1024) (i32.const 37)))
)
