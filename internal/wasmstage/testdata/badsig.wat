;; badsig.wat: hs_process returns i32 instead of i64.
(module
  (memory (export "memory") 1)
  (func (export "hs_abi_version") (result i32) (i32.const 1))
  (func (export "hs_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "hs_process") (param i32 i32) (result i32) (i32.const 0)))
