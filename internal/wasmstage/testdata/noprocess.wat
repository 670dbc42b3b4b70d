;; noprocess.wat: hs_process is missing.
(module
  (memory (export "memory") 1)
  (func (export "hs_abi_version") (result i32) (i32.const 1))
  (func (export "hs_alloc") (param i32) (result i32) (i32.const 1024)))
