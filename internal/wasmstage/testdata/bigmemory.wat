;; bigmemory.wat: declares 128 MiB of initial memory, over the default limit.
(module
  (memory (export "memory") 2048)
  (func (export "hs_abi_version") (result i32) (i32.const 1))
  (func (export "hs_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "hs_process") (param i32 i32) (result i64) (i64.const 0)))
