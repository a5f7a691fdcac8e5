//! TAP-like output: one `ok - name` / `not ok - name: why` line per check, then a summary.

#[derive(Default)]
pub struct Report {
    passed: usize,
    failed: usize,
}

impl Report {
    pub fn check(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.passed += 1;
                println!("ok - {name}");
            }
            Err(why) => {
                self.failed += 1;
                println!("not ok - {name}: {why}");
            }
        }
    }

    pub fn failed(&self) -> usize {
        self.failed
    }

    pub fn summary(&self) -> String {
        format!("itest: {} passed, {} failed", self.passed, self.failed)
    }
}
