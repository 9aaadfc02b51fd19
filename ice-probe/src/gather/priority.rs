//! Candidate priority split into its three parts (RFC 8445 section 5.1.2.1):
//! priority = 2^24 * type preference + 2^8 * local preference + (256 - component).

/// The three parts of a candidate priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorityParts {
    /// 126 host, 110 prflx, 100 srflx, 0 relay (the RFC's recommendations).
    pub type_preference: u8,
    pub local_preference: u16,
    /// The low byte, 256 - component (255 for RTP).
    pub component_preference: u16,
}

impl PriorityParts {
    pub fn of(priority: u32) -> Self {
        PriorityParts {
            type_preference: (priority >> 24) as u8,
            local_preference: ((priority >> 8) & 0xFFFF) as u16,
            component_preference: (priority & 0xFF) as u16,
        }
    }

    /// The component the low byte stands for (256 - byte).
    pub fn component(&self) -> u16 {
        256 - self.component_preference
    }

    pub fn priority(&self) -> u32 {
        (u32::from(self.type_preference) << 24)
            + (u32::from(self.local_preference) << 8)
            + u32::from(self.component_preference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_rfc_examples() {
        // host, local preference 65535, component 1.
        let p = (1u32 << 24) * 126 + (1 << 8) * 65535 + (256 - 1);
        assert_eq!(p, 2_130_706_431);
        let s = PriorityParts::of(p);
        assert_eq!(
            (
                s.type_preference,
                s.local_preference,
                s.component_preference
            ),
            (126, 65535, 255)
        );
        assert_eq!(s.component(), 1);
        assert_eq!(s.priority(), p);
        // srflx, component 2.
        let s = PriorityParts::of((100 << 24) + (65535 << 8) + 254);
        assert_eq!((s.type_preference, s.component()), (100, 2));
        // relay: type preference 0.
        let s = PriorityParts::of((65535 << 8) + 255);
        assert_eq!((s.type_preference, s.local_preference), (0, 65535));
    }

    #[test]
    fn roundtrips_every_part() {
        for t in [0u8, 100, 110, 126, 255] {
            for l in [0u16, 1, 8191, 65535] {
                for c in 1u16..=256 {
                    let parts = PriorityParts {
                        type_preference: t,
                        local_preference: l,
                        component_preference: 256 - c,
                    };
                    if c == 256 {
                        continue;
                    }
                    assert_eq!(PriorityParts::of(parts.priority()), parts);
                }
            }
        }
    }
}
