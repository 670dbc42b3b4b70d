;; rowcount.wat: a haproxystats WASM stage written against the raw ABI
;; (docs/ABI.md, version 1), without any SDK or WASI.
;;
;; It counts the statistics rows of each kind and sums the current sessions
;; (scur) of the frontends, and sends
;;
;;   P.rowcount.frontend  P.rowcount.backend  P.rowcount.server  P.rowcount.other
;;   P.daemon.StatRows                 all rows
;;   P.daemon.FrontendScur             sum of scur over the frontend rows
;;
;; and logs one line per snapshot through hs.log.
;;
;; Build: wat2wasm rowcount/rowcount.wat -o rowcount/rowcount.wasm (from wasm-examples/)
(module
  (import "hs" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)

  ;; Constant strings.
  (data (i32.const 256) "scur")                ;; the column list, 4 bytes
  (data (i32.const 272) "rowcount.other")      ;; 14 bytes; kind 0
  (data (i32.const 288) "rowcount.frontend")   ;; 17 bytes; kind 1
  (data (i32.const 320) "rowcount.backend")    ;; 16 bytes; kind 2
  (data (i32.const 352) "rowcount.server")     ;; 15 bytes; kind 3
  (data (i32.const 384) "StatRows")            ;; 8 bytes
  (data (i32.const 400) "FrontendScur")        ;; 12 bytes
  (data (i32.const 416) "rowcount: processed a snapshot")  ;; 30 bytes

  ;; Row counts per kind, 4 x i32 at 512.
  ;; The output buffer is built at 1024; the input goes at 64 KiB.
  (global $out (mut i32) (i32.const 0))    ;; end of the output so far
  (global $count (mut i32) (i32.const 0))  ;; metrics in the output

  (func (export "hs_abi_version") (result i32) (i32.const 1))

  ;; hs_columns: "scur", as ptr<<32 | len.
  (func (export "hs_columns") (result i64)
    (i64.or (i64.shl (i64.const 256) (i64.const 32)) (i64.const 4)))

  ;; hs_alloc: the input always goes at 64 KiB (8-byte aligned); grow the
  ;; memory to hold it. Returning 0 tells the host the allocation failed.
  (func (export "hs_alloc") (param $size i32) (result i32)
    (local $need i32)
    (local.set $need
      (i32.shr_u (i32.add (local.get $size) (i32.const 131071)) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 65536))

  (func $align8 (param $n i32) (result i32)
    (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8)))

  ;; Append one record: scope, no object, no server, name, value.
  (func $emit (param $scope i32) (param $name i32) (param $len i32) (param $value f64)
    (local $p i32)
    (local.set $p (global.get $out))
    (i32.store8 (local.get $p) (local.get $scope))       ;; scope
    (i32.store8 offset=1 (local.get $p) (i32.const 0))   ;; reserved
    (i32.store16 offset=2 (local.get $p) (i32.const 0))  ;; object length
    (i32.store16 offset=4 (local.get $p) (i32.const 0))  ;; server length
    (i32.store16 offset=6 (local.get $p) (local.get $len))
    (f64.store offset=8 (local.get $p) (local.get $value))
    (memory.copy (i32.add (local.get $p) (i32.const 16)) (local.get $name) (local.get $len))
    (global.set $out (i32.add (local.get $p) (i32.add (i32.const 16) (local.get $len))))
    (global.set $count (i32.add (global.get $count) (i32.const 1))))

  (func (export "hs_process") (param $in i32) (param $len i32) (result i64)
    (local $rows i32) (local $procs i32) (local $cols i32)
    (local $kinds i32) (local $col i32) (local $i i32) (local $k i32)
    (local $scur f64)
    ;; Header fields.
    (local.set $procs (i32.load offset=36 (local.get $in)))
    (local.set $rows (i32.load offset=40 (local.get $in)))
    (local.set $cols (i32.load offset=44 (local.get $in)))
    ;; The kind array follows the process ids, then the three u32 row
    ;; arrays, each padded to 8 bytes.
    (local.set $kinds
      (i32.add (local.get $in)
        (i32.add (i32.load offset=56 (local.get $in))
          (i32.add (call $align8 (i32.mul (local.get $procs) (i32.const 4)))
            (i32.mul (i32.const 3) (call $align8 (i32.mul (local.get $rows) (i32.const 4))))))))
    ;; The first (only) column block follows the kinds: u32 name id, u32 0,
    ;; f64 values[rows], u64 null bitmap.
    (local.set $col (i32.add (local.get $kinds) (call $align8 (local.get $rows))))

    ;; Count the kinds, sum the frontends' scur.
    (i64.store (i32.const 512) (i64.const 0))
    (i64.store (i32.const 520) (i64.const 0))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $k (i32.load8_u (i32.add (local.get $kinds) (local.get $i))))
        (if (i32.lt_u (local.get $k) (i32.const 4))
          (then
            (i32.store (i32.add (i32.const 512) (i32.shl (local.get $k) (i32.const 2)))
              (i32.add (i32.load (i32.add (i32.const 512) (i32.shl (local.get $k) (i32.const 2))))
                       (i32.const 1)))))
        ;; scur of a frontend row whose null bit is clear.
        (if (i32.and (i32.eq (local.get $k) (i32.const 1)) (i32.gt_u (local.get $cols) (i32.const 0)))
          (then
            (if (i32.eqz
                  (i32.and
                    (i32.load8_u
                      (i32.add (local.get $col)
                        (i32.add (i32.add (i32.const 8) (i32.mul (local.get $rows) (i32.const 8)))
                          (i32.shr_u (local.get $i) (i32.const 3)))))
                    (i32.shl (i32.const 1) (i32.and (local.get $i) (i32.const 7)))))
              (then
                (local.set $scur
                  (f64.add (local.get $scur)
                    (f64.load offset=8
                      (i32.add (local.get $col) (i32.mul (local.get $i) (i32.const 8))))))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows)))

    ;; Output: 16-byte header at 1024, then the records.
    (global.set $out (i32.const 1040))
    (global.set $count (i32.const 0))
    (call $emit (i32.const 7) (i32.const 288) (i32.const 17) (f64.convert_i32_u (i32.load (i32.const 516))))
    (call $emit (i32.const 7) (i32.const 320) (i32.const 16) (f64.convert_i32_u (i32.load (i32.const 520))))
    (call $emit (i32.const 7) (i32.const 352) (i32.const 15) (f64.convert_i32_u (i32.load (i32.const 524))))
    (call $emit (i32.const 7) (i32.const 272) (i32.const 14) (f64.convert_i32_u (i32.load (i32.const 512))))
    (call $emit (i32.const 1) (i32.const 384) (i32.const 8) (f64.convert_i32_u (local.get $rows)))
    (if (i32.gt_u (local.get $cols) (i32.const 0))
      (then (call $emit (i32.const 1) (i32.const 400) (i32.const 12) (local.get $scur))))
    (i32.store (i32.const 1024) (i32.const 0x314F5348))  ;; "HSO1"
    (i32.store (i32.const 1028) (i32.const 0))           ;; status ok
    (i32.store (i32.const 1032) (global.get $count))     ;; metrics
    (i32.store (i32.const 1036) (i32.const 0))           ;; reserved
    (call $log (i32.const 1) (i32.const 416) (i32.const 30))
    (i64.or (i64.shl (i64.const 1024) (i64.const 32))
            (i64.extend_i32_u (i32.sub (global.get $out) (i32.const 1024)))))
)
