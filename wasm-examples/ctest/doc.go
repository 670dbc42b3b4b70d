// Package ctest tests the C and Rust guest SDKs (wasm-examples/sdk/c,
// wasm-examples/sdk/rust) and the C and Rust examples. It has no code of
// its own. The tests build the modules once with
// wasm-examples/build-c-rust.sh into a temporary directory, then:
//
//   - TestExamples runs each example's test case as `haproxystats-engine
//     test` does (enginetest.Run with cases.Build);
//     TestExampleOptions and TestRsavailTransitions check the examples'
//     options and the state rsavail keeps between snapshots;
//   - TestSDK runs testdata/sdkc.c and testdata/sdkrs.rs, the same stage
//     written against each SDK, through internal/wasmstage over recorded
//     snapshots and compares their metrics with the ones recomputed here
//     from the engine's snapshot; TestSDKErrors checks their failure paths;
//   - TestABI calls the same modules' exports directly on wazero with
//     buffers written byte by byte, malformed ones included;
//   - BenchmarkPipeline times the examples on the large snapshot.
//
// A missing toolchain (Debian clang, lld, wasi-libc; rustc with
// libstd-rust-dev-wasm32) skips the tests of that language with the
// script's message naming the packages; a module that fails to build
// fails them.
package ctest
