//! sdkrs exercises every accessor and output function of sdk/rust/hsabi.rs;
//! the Go test (sdk_test.go) computes the same metrics from the snapshot
//! with the engine and compares. sdkc.c is the same module in C.
//!
//! Parameters: alpha (an integer), beta (any text), fail-init (refuse to
//! start), fail-process (fail every call), panic (panic in every call).

#[path = "../../sdk/rust/hsabi.rs"]
mod hsabi;

use hsabi::{Level, Out, Params, Snapshot, KIND_BACKEND, KIND_FRONTEND, KIND_SERVER};

struct Sdk {
    alpha: f64,
    beta_len: f64,
    param_count: f64,
    fail_process: bool,
    panic: bool,
    first_frontend_id: Option<u32>,
}

impl hsabi::Stage for Sdk {
    const COLUMNS: &'static str = "scur nosuchcol slim";

    fn init(&mut self, params: &Params) -> Result<(), String> {
        self.param_count = params.iter().count() as f64;
        for (k, v) in params.iter() {
            match k {
                "alpha" => self.alpha = v.parse::<i64>().map_err(|e| format!("alpha: {}", e))? as f64,
                "fail-init" => return Err("init refused: fail-init".into()),
                "fail-process" => self.fail_process = true,
                "panic" => self.panic = true,
                _ => {}
            }
        }
        if let Some(b) = params.get("beta") {
            self.beta_len = b.len() as f64;
        }
        hsabi::log(Level::Info, "sdkrs: init done");
        Ok(())
    }

    fn process(&mut self, s: &Snapshot, out: &mut Out) -> Result<(), String> {
        if self.panic {
            let v: Vec<u8> = Vec::new();
            let _ = v[s.rows() + 7]; // index out of bounds
        }
        if self.fail_process {
            out.daemon("Discarded", 1.0);
            return Err("process refused: fail-process".into());
        }
        let scur = s.column("scur").ok_or("no scur column")?;
        let slim = s.column("slim").ok_or("no slim column")?;
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        out.daemon("Rows", s.rows() as f64);
        out.daemon("Columns", s.columns.len() as f64);
        out.daemon("Time", s.time as f64);
        out.daemon("NameLen", s.name.len() as f64);
        out.daemon("Procs", s.procs.len() as f64);
        out.daemon("InfoRows", s.info_procs.len() as f64);
        out.daemon("MissingColumn", b(s.column("nosuchcol").is_none()));
        out.daemon("FirstColumnIsScur", b(!s.columns.is_empty() && s.columns[0].name == scur.name));
        out.daemon("ParamCount", self.param_count);
        out.daemon("ParamAlpha", self.alpha);
        out.daemon("ParamBetaLen", self.beta_len);

        let curr = s.info_key("CurrConns");
        let idle = s.info_key("Idle_pct");
        let none = s.info_key("NoSuchKey");
        for (r, &proc_) in s.info_procs.iter().enumerate() {
            let name = s.bytes(proc_);
            for (key, label) in [(curr, "CurrConns"), (idle, "Idle_pct"), (none, "NoSuchKey")] {
                if let Some(v) = key.and_then(|k| s.info_value(k, r)) {
                    out.process(name, label, v as f64);
                }
            }
        }

        let frontend = s.find("FRONTEND").unwrap_or(u32::MAX);
        let first = *self.first_frontend_id.get_or_insert(frontend);
        let or_null = |c: &hsabi::Column, i: usize| c.get(i).unwrap_or(-1.0);
        let mut find_ok = true;
        let mut kinds = [0.0f64; 4];
        for i in 0..s.rows() {
            let (px, sv) = (s.bytes(s.px[i]), s.bytes(s.sv[i]));
            kinds[(s.kind[i] & 3) as usize] += 1.0;
            out.process(s.bytes(s.procs[s.proc_[i] as usize]), "StatRows", 1.0);
            match s.kind[i] {
                KIND_FRONTEND => {
                    find_ok &= s.sv[i] == frontend;
                    out.frontend(px, "scur", or_null(&scur, i));
                    out.frontend(px, "slim", or_null(&slim, i));
                    out.frontend(px, "proc", s.proc_[i] as f64);
                }
                KIND_BACKEND => {
                    out.backend(px, "scur", or_null(&scur, i));
                    out.backend(px, "slim", or_null(&slim, i));
                    out.backend(px, "proc", s.proc_[i] as f64);
                }
                KIND_SERVER => {
                    out.server(px, sv, "scur", or_null(&scur, i));
                    out.aggr_server(sv, "slim", or_null(&slim, i));
                }
                _ => {}
            }
        }
        out.daemon("FindOK", b(find_ok));
        out.daemon("StableID", b(frontend == first));
        out.daemon("SameRows", b(s.same_rows));
        out.path("sdk.kind.other", kinds[0]);
        out.path("sdk.kind.frontend", kinds[1]);
        out.path("sdk.kind.backend", kinds[2]);
        out.path("sdk.kind.server", kinds[3]);
        Ok(())
    }
}

hsabi_stage_with_init!(
    Sdk,
    Sdk { alpha: -1.0, beta_len: -1.0, param_count: -1.0, fail_process: false, panic: false, first_frontend_id: None }
);
