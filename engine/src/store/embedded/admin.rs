//! The records around the cases: the audit log, stored rulebook versions and the crisis
//! switch. Small, rarely written, and kept in the same store so they share its durability.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::*;
use crate::store::codec::{self};
use crate::store::{Activation, AuditEntry, NewAudit, RulebookFile, RulebookVersion, StoreError};

impl Embedded {
    pub(super) fn append_audit(&self, entry: NewAudit) -> Result<u64, StoreError> {
        self.write(move |tx| tx.audit(entry))
    }

    pub(super) fn audit_log(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let start = match after {
            Some(id) => key::audit(id.saturating_add(1)),
            None => vec![key::AUDIT],
        };
        let mut snap = self.snapshot()?;
        snap.range(Space::Records, &start, Some(&[key::AUDIT + 1]), limit)?
            .into_iter()
            .map(|(k, v)| postcard::from_bytes(&v).map_err(|e| self.shared.corrupt(&k, e)))
            .collect()
    }

    pub(super) fn save_rulebook_version(
        &self,
        version: &str,
        files: &[RulebookFile],
        activated_by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let version = version.to_owned();
        let record = codec::VersionRec {
            files: files
                .iter()
                .map(|f| (f.role.clone(), f.path.clone(), f.text.clone()))
                .collect(),
        };
        let actor = activated_by.to_owned();
        self.write(move |tx| {
            let k = key::version(&version);
            let new = tx.read(Space::Records, &k)?.is_none();
            if new {
                tx.put_rec(&k, &record)?;
            }
            let n = tx.counters.next_activation;
            tx.counters.next_activation += 1;
            tx.put_rec(
                &key::activation(n),
                &codec::ActivationRec {
                    version: version.clone(),
                    by: actor.clone(),
                    at: codec::micros(at),
                },
            )?;
            Ok(new)
        })
    }

    pub(super) fn rulebook_version(
        &self,
        version: &str,
    ) -> Result<Option<Vec<RulebookFile>>, StoreError> {
        let record: Option<codec::VersionRec> = self.snapshot()?.load(&key::version(version))?;
        Ok(record.map(|r| {
            r.files
                .into_iter()
                .map(|(role, path, text)| RulebookFile { role, path, text })
                .collect()
        }))
    }

    pub(super) fn rulebook_versions(&self) -> Result<Vec<RulebookVersion>, StoreError> {
        let mut snap = self.snapshot()?;
        let prefix = [key::ACTIVATION];
        let end = key::prefix_end(&prefix);
        let mut start = prefix.to_vec();
        let mut versions: Vec<RulebookVersion> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        loop {
            let page = snap.range(Space::Records, &start, Some(&end), 1024)?;
            for (k, v) in &page {
                let rec: codec::ActivationRec =
                    postcard::from_bytes(v).map_err(|e| self.shared.corrupt(k, e))?;
                let activation = Activation {
                    at: codec::from_micros(rec.at).map_err(|e| self.shared.corrupt(k, e))?,
                    by: rec.by,
                };
                match index.get(&rec.version) {
                    Some(i) => versions[*i].activations.push(activation),
                    None => {
                        index.insert(rec.version.clone(), versions.len());
                        versions.push(RulebookVersion {
                            version: rec.version,
                            activations: vec![activation],
                        });
                    }
                }
            }
            match page.last() {
                Some((k, _)) if page.len() == 1024 => start = key::after(k),
                _ => break,
            }
        }
        Ok(versions)
    }

    pub(super) fn crisis_switch(&self) -> Result<Option<bool>, StoreError> {
        let switch: Option<Option<bool>> = self.snapshot()?.load(&key::meta(CRISIS_SWITCH))?;
        Ok(switch.flatten())
    }

    pub(super) fn set_crisis_switch(
        &self,
        on: Option<bool>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (subject, details) = match on {
            Some(true) => ("on", "crisis mode is now on"),
            Some(false) => ("off", "crisis mode is now off"),
            None => ("rulebook", "crisis mode follows the rulebook"),
        };
        let entry = audit(
            actor,
            "crisis.switch",
            subject.to_owned(),
            details.to_owned(),
            now,
        );
        self.write(move |tx| {
            tx.put_rec(&key::meta(CRISIS_SWITCH), &on)?;
            tx.audit(entry)?;
            Ok(())
        })
    }
}
