//! Where writes go under `write_failover = "manual"`: the home region until an operator
//! moves them (`POST /admin/write-region`), kept across reloads while the region stays
//! configured, and published as `globalscale_write_region{region}`.

use std::sync::{Mutex, PoisonError};

use prometheus::IntGaugeVec;

/// The write region, and its gauge.
pub struct WriteRegion {
    current: Mutex<String>,
    gauge: IntGaugeVec,
}

impl WriteRegion {
    /// Writes go to `home` at first.
    pub fn new(home: &str, gauge: IntGaugeVec) -> Self {
        Self {
            current: Mutex::new(home.to_owned()),
            gauge,
        }
    }

    pub fn get(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Moves writes to `region`, one of `regions`; returns where they went before.
    pub fn set(&self, region: &str, regions: &[&str]) -> Result<String, String> {
        if !regions.contains(&region) {
            return Err(format!("{region} is not a configured region"));
        }
        let previous = std::mem::replace(
            &mut *self.current.lock().unwrap_or_else(PoisonError::into_inner),
            region.to_owned(),
        );
        self.publish(regions);
        Ok(previous)
    }

    /// After a reload to `regions` (home first): a write region no longer configured falls
    /// back to the home region; the gauge is rebuilt for the regions now configured.
    pub fn keep(&self, regions: &[&str]) {
        let current = self.get();
        if !regions.contains(&current.as_str())
            && let Some(home) = regions.first()
        {
            tracing::warn!(
                removed = current,
                home,
                "the write region left the config; writes go home"
            );
            (*home).clone_into(&mut *self.current.lock().unwrap_or_else(PoisonError::into_inner));
        }
        self.gauge.reset();
        self.publish(regions);
    }

    /// `globalscale_write_region{region}`: 1 for the write region, 0 for the others.
    pub fn publish(&self, regions: &[&str]) {
        let current = self.get();
        for region in regions {
            self.gauge
                .with_label_values(&[region])
                .set(i64::from(*region == current));
        }
    }
}

#[cfg(test)]
mod tests {
    use prometheus::Opts;

    use super::*;

    fn write_region() -> WriteRegion {
        let gauge = IntGaugeVec::new(Opts::new("w", "w"), &["region"]).unwrap();
        WriteRegion::new("us-east-1", gauge)
    }

    #[test]
    fn moves_only_to_a_configured_region_and_falls_back_home_when_it_leaves() {
        let w = write_region();
        let regions = ["us-east-1", "us-west-2"];
        assert!(w.set("eu-west-1", &regions).is_err());
        assert_eq!(w.set("us-west-2", &regions), Ok("us-east-1".to_owned()));
        assert_eq!(w.gauge.with_label_values(&["us-west-2"]).get(), 1);
        assert_eq!(w.gauge.with_label_values(&["us-east-1"]).get(), 0);
        w.keep(&regions);
        assert_eq!(w.get(), "us-west-2");
        w.keep(&["us-east-1", "eu-central-1"]);
        assert_eq!(w.get(), "us-east-1");
        assert_eq!(w.gauge.with_label_values(&["us-east-1"]).get(), 1);
    }
}
