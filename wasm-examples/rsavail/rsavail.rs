//! rsavail is a haproxystats WASM stage in Rust (SDK sdk/rust/hsabi.rs):
//! how much of each backend's capacity is up.
//!
//! HAProxy reports, on a backend's BACKEND row, how many of its active
//! servers are up (`act`), how many backup servers are up (`bck`) and the
//! total weight of the servers in use (`weight`); on a server row, whether
//! the server is an active one (`act` 1) or a backup (`bck` 1) and its
//! weight, whatever its state. For every backend with active servers it
//! sends
//!
//!     P.backend.<backend>.ActiveServersUpPct   100 * act (BACKEND) / active servers
//!     P.backend.<backend>.ActiveServersDown    active servers - act (BACKEND)
//!     P.backend.<backend>.ActiveWeightUpPct    100 * weight (BACKEND) / weight of the active servers
//!
//! (ActiveWeightUpPct is 0 when no active server is up: HAProxy then
//! reports the weight of the backups in use), and for every snapshot the
//! free paths
//!
//!     P.availability.backends_degraded   backends whose ActiveServersUpPct < degraded-below
//!     P.availability.backends_down       backends with servers but none up, active or backup
//!
//! Values are summed over the HAProxy processes; null cells count as 0.
//! The option `degraded-below` (percent, default 100) sets the threshold.
//! Between snapshots it keeps each backend's state, by string id, and logs
//! a line when a backend becomes degraded or down, or recovers.
//!
//! Build (from wasm-examples/; Debian: apt-get install -y rustc libstd-rust-dev-wasm32):
//!
//!     /usr/bin/rustc --target wasm32-unknown-unknown --crate-type cdylib -O -C panic=abort \
//!         -C strip=debuginfo -C target-feature=+bulk-memory --edition 2021 \
//!         -o rsavail/rsavail.wasm rsavail/rsavail.rs

#[path = "../sdk/rust/hsabi.rs"]
mod hsabi;

use hsabi::{Level, Out, Params, Snapshot, KIND_BACKEND, KIND_SERVER};

/// One backend over all processes.
#[derive(Clone, Copy, Default)]
struct Backend {
    px: u32,              // string id of its name
    has_row: bool,        // a BACKEND row was seen
    act_up: f64,          // act of the BACKEND rows
    bck_up: f64,          // bck of the BACKEND rows
    weight_up: f64,       // weight of the BACKEND rows
    active: f64,          // server rows with act 1
    backup: f64,          // server rows with bck 1
    active_weight: f64,   // weight of those
}

const UNKNOWN: u8 = 0;
const OK: u8 = 1;
const DEGRADED: u8 = 2;
const DOWN: u8 = 3;

struct Avail {
    degraded_below: f64,
    // Reused from snapshot to snapshot:
    slot: Vec<u32>,         // px id -> backend slot + 1 in this snapshot, 0 = none
    backends: Vec<Backend>, // this snapshot's backends, in order of first row
    // State kept between snapshots:
    state: Vec<u8>, // px id -> state at the last snapshot
}

impl hsabi::Stage for Avail {
    const COLUMNS: &'static str = "act bck weight";

    fn init(&mut self, params: &Params) -> Result<(), String> {
        for (key, value) in params.iter() {
            match key {
                "degraded-below" => match value.parse::<f64>() {
                    Ok(v) if (0.0..=100.0).contains(&v) => self.degraded_below = v,
                    _ => return Err(format!("degraded-below = {:?}: want a percentage from 0 to 100", value)),
                },
                _ => return Err(format!("unknown option {:?} (known: degraded-below)", key)),
            }
        }
        Ok(())
    }

    fn process(&mut self, snap: &Snapshot, out: &mut Out) -> Result<(), String> {
        let (act, bck, weight) = match (snap.column("act"), snap.column("bck"), snap.column("weight")) {
            (Some(a), Some(b), Some(w)) => (a, b, w),
            _ => {
                out.path("availability.backends_degraded", 0.0);
                out.path("availability.backends_down", 0.0);
                return Ok(());
            }
        };
        // String ids are dense: arrays indexed by id group the rows.
        if self.slot.len() < snap.strings() {
            self.slot.resize(snap.strings(), 0);
            self.state.resize(snap.strings(), UNKNOWN);
        }
        for b in &self.backends {
            self.slot[b.px as usize] = 0;
        }
        self.backends.clear();

        // One pass over the rows, four per loop iteration (see
        // hsabi::for_each_row: fewer timeout checks).
        let (slot, backends) = (&mut self.slot, &mut self.backends);
        hsabi::for_each_row(snap.rows(), |i| {
            let kind = snap.kind[i];
            if kind != KIND_BACKEND && kind != KIND_SERVER {
                return;
            }
            let px = snap.px[i];
            let mut s = slot[px as usize] as usize;
            if s == 0 {
                backends.push(Backend { px, ..Backend::default() });
                s = backends.len();
                slot[px as usize] = s as u32;
            }
            let b = &mut backends[s - 1];
            if kind == KIND_BACKEND {
                b.has_row = true;
                b.act_up += act.value(i);
                b.bck_up += bck.value(i);
                b.weight_up += weight.value(i);
            } else if act.value(i) > 0.0 {
                b.active += 1.0;
                b.active_weight += weight.value(i);
            } else if bck.value(i) > 0.0 {
                b.backup += 1.0;
            }
        });

        let (mut degraded, mut down) = (0.0, 0.0);
        for b in &self.backends {
            if !b.has_row || b.active + b.backup == 0.0 {
                continue; // no servers (a stats or redirect backend), or no BACKEND row
            }
            let name = snap.bytes(b.px);
            let mut state = OK;
            if b.active > 0.0 {
                let pct = 100.0 * b.act_up / b.active;
                out.backend(name, "ActiveServersUpPct", pct);
                out.backend(name, "ActiveServersDown", (b.active - b.act_up).max(0.0));
                if b.active_weight > 0.0 {
                    let w = if b.act_up > 0.0 { 100.0 * b.weight_up / b.active_weight } else { 0.0 };
                    out.backend(name, "ActiveWeightUpPct", w);
                }
                if pct < self.degraded_below {
                    degraded += 1.0;
                    state = DEGRADED;
                }
            }
            if b.act_up == 0.0 && b.bck_up == 0.0 {
                down += 1.0;
                state = DOWN;
            }
            let before = std::mem::replace(&mut self.state[b.px as usize], state);
            if before != UNKNOWN && before != state {
                let level = if state == OK { Level::Info } else { Level::Warn };
                let what = ["", "recovered", "degraded", "down"][state as usize];
                hsabi::log(
                    level,
                    &format!(
                        "backend {}: {} ({} of {} active servers up)",
                        String::from_utf8_lossy(name),
                        what,
                        b.act_up,
                        b.active
                    ),
                );
            }
        }
        out.path("availability.backends_degraded", degraded);
        out.path("availability.backends_down", down);
        Ok(())
    }
}

hsabi_stage_with_init!(
    Avail,
    Avail { degraded_below: 100.0, slot: Vec::new(), backends: Vec::new(), state: Vec::new() }
);
