//! How replicas share the organisations' leases out, decided by each replica alone from
//! what it last read: which replicas are alive and who holds each lease. Each holds
//! between floor(organisations / replicas) and its share, the ceiling:
//! - above the ceiling, it gives the surplus up;
//! - at the ceiling, while replicas below the floor (a newcomer) lack more than the free
//!   leases cover, it gives one up, if it comes first (by name) among those at the
//!   ceiling that are needed;
//! - below the ceiling, it takes free leases, except that a replica at the floor or above
//!   leaves them to those below it.
//!
//! Every replica prefers the organisations that rank highest for it (rendezvous hashing),
//! so that replicas racing for free leases mostly want different ones, and an
//! organisation tends to stay where it was.

/// A replica's share of `orgs` organisations among `replicas` (at least this one).
pub fn target(orgs: usize, replicas: usize) -> usize {
    orgs.div_ceil(replicas.max(1))
}

/// What one replica sees of an organisation's lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub org: String,
    /// Its holder while the lease is in force; `None` when free or lapsed.
    pub holder: Option<String>,
}

/// What a replica does at one step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Leases this replica holds beyond its share, the ones it wants least first.
    pub give_up: Vec<String>,
    /// Free leases it may take, the ones it wants most first; it stops once it holds
    /// `share` (a take may fail: another replica was quicker).
    pub take: Vec<String>,
    pub share: usize,
}

/// `me`'s plan, with `replicas` alive (by name; `me` counts whether listed or not) and
/// `leases` as seen.
pub fn plan(me: &str, replicas: &[String], leases: &[Seen]) -> Plan {
    let mut alive: Vec<&str> = replicas.iter().map(String::as_str).collect();
    if !alive.contains(&me) {
        alive.push(me);
    }
    alive.sort_unstable();
    alive.dedup();
    let share = target(leases.len(), alive.len());
    let floor = leases.len() / alive.len();
    let count = |replica: &str| {
        leases
            .iter()
            .filter(|lease| lease.holder.as_deref() == Some(replica))
            .count()
    };
    let counts: Vec<(&str, usize)> = alive.iter().map(|r| (*r, count(r))).collect();
    let free_count = leases.iter().filter(|lease| lease.holder.is_none()).count();
    let lacking: usize = counts.iter().map(|(_, c)| floor.saturating_sub(*c)).sum();
    let mut held: Vec<&str> = leases
        .iter()
        .filter(|lease| lease.holder.as_deref() == Some(me))
        .map(|lease| lease.org.as_str())
        .collect();
    let mut free: Vec<&str> = leases
        .iter()
        .filter(|lease| lease.holder.is_none())
        .map(|lease| lease.org.as_str())
        .collect();
    let rank = |org: &&str| std::cmp::Reverse(weight(me, org));
    held.sort_by_key(rank);
    free.sort_by_key(rank);
    let mut keep = share;
    if held.len() == share && share > floor {
        // Donors: those at the ceiling, by name; as many as the free leases do not cover.
        let needed = lacking.saturating_sub(free_count);
        let donors = counts.iter().filter(|(_, c)| *c == share);
        if donors.take(needed).any(|(replica, _)| *replica == me) {
            keep = share - 1;
        }
    }
    let give_up = held
        .iter()
        .skip(keep)
        .rev()
        .map(|org| (*org).to_owned())
        .collect();
    let others_lack = counts.iter().any(|(r, c)| *r != me && *c < floor);
    let takes = held.len() < floor || (held.len() < share && !others_lack);
    let take = if takes {
        free.iter().map(|org| (*org).to_owned()).collect()
    } else {
        Vec::new()
    };
    Plan {
        give_up,
        take,
        share,
    }
}

/// How much `replica` wants `org`: FNV-1a of both, stable across processes and versions.
fn weight(replica: &str, org: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in replica.bytes().chain([0]).chain(org.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // FNV's low bits mix poorly for inputs that differ in their last byte: finish with a
    // multiply-xorshift so that the ranks of `org-1`, `org-2`, ... spread.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(replicas: &[&str]) -> Vec<String> {
        replicas.iter().map(|r| (*r).to_owned()).collect()
    }

    fn leases(holders: &[Option<&str>]) -> Vec<Seen> {
        holders
            .iter()
            .enumerate()
            .map(|(i, holder)| Seen {
                org: format!("org-{i}"),
                holder: holder.map(str::to_owned),
            })
            .collect()
    }

    /// Replicas stepping in turn, each taking what its plan allows while the lease is
    /// still free, as the database would let it.
    fn settle(replicas: &[&str], world: &mut [Seen], rounds: usize) {
        for _ in 0..rounds {
            for me in replicas {
                let plan = plan(me, &names(replicas), world);
                for org in &plan.give_up {
                    let lease = world.iter_mut().find(|l| &l.org == org).unwrap();
                    lease.holder = None;
                }
                let mut held = world
                    .iter()
                    .filter(|l| l.holder.as_deref() == Some(me))
                    .count();
                for org in &plan.take {
                    if held >= plan.share {
                        break;
                    }
                    let lease = world.iter_mut().find(|l| &l.org == org).unwrap();
                    if lease.holder.is_none() {
                        lease.holder = Some((*me).to_owned());
                        held += 1;
                    }
                }
            }
        }
    }

    fn counts(replicas: &[&str], world: &[Seen]) -> Vec<usize> {
        replicas
            .iter()
            .map(|me| {
                world
                    .iter()
                    .filter(|l| l.holder.as_deref() == Some(me))
                    .count()
            })
            .collect()
    }

    #[test]
    fn shares_are_ceilings() {
        assert_eq!(target(30, 3), 10);
        assert_eq!(target(31, 3), 11);
        assert_eq!(target(1, 2), 1);
        assert_eq!(target(0, 3), 0);
        assert_eq!(target(5, 0), 5, "no replica seen still counts this one");
    }

    #[test]
    fn a_replica_above_its_share_gives_up_the_surplus_it_wants_least() {
        let world = leases(&[Some("a"); 4]);
        let plan = plan("a", &names(&["a", "b"]), &world);
        assert_eq!(plan.share, 2);
        assert_eq!(plan.give_up.len(), 2);
        assert!(plan.take.is_empty());
        let kept: Vec<_> = world
            .iter()
            .map(|l| l.org.clone())
            .filter(|org| !plan.give_up.contains(org))
            .collect();
        let least_kept = kept.iter().map(|org| weight("a", org)).min().unwrap();
        for org in &plan.give_up {
            assert!(weight("a", org) <= least_kept, "{org} is wanted less");
        }
    }

    #[test]
    fn a_replica_at_its_share_takes_nothing_even_when_leases_are_free() {
        let world = leases(&[Some("a"), Some("b"), None, None]);
        let four = names(&["a", "b", "c", "d"]);
        assert!(plan("a", &four, &world).take.is_empty());
        assert_eq!(plan("c", &four, &world).take.len(), 2);
    }

    #[test]
    fn a_newcomer_below_the_floor_gets_one_lease_from_the_first_at_the_ceiling() {
        let world = leases(&[
            Some("a"),
            Some("a"),
            Some("b"),
            Some("b"),
            Some("c"),
            Some("c"),
        ]);
        let four = names(&["a", "b", "c", "d"]);
        assert_eq!(plan("a", &four, &world).give_up.len(), 1);
        assert!(plan("b", &four, &world).give_up.is_empty());
        assert!(plan("c", &four, &world).give_up.is_empty());
        // Once it is free, the newcomer takes it and the donor does not take it back.
        let given = plan("a", &four, &world).give_up[0].clone();
        let mut world = world;
        world.iter_mut().find(|l| l.org == given).unwrap().holder = None;
        assert!(plan("a", &four, &world).take.is_empty());
        assert_eq!(plan("d", &four, &world).take, [given]);
    }

    #[test]
    fn any_start_settles_within_the_bound_and_covers_every_organisation() {
        let mut rng = fastrand::Rng::with_seed(22);
        for _ in 0..500 {
            let n = rng.usize(0..40);
            let r = rng.usize(1..6);
            let names: Vec<String> = (0..r).map(|i| format!("replica-{i}")).collect();
            let replicas: Vec<&str> = names.iter().map(String::as_str).collect();
            // Any start: leases free, or held by any replica, beyond any share.
            let mut world = leases(&vec![None; n]);
            for lease in &mut world {
                if rng.bool() {
                    lease.holder = Some(replicas[rng.usize(..r)].to_owned());
                }
            }
            settle(&replicas, &mut world, 4);
            let counts = counts(&replicas, &world);
            assert!(
                world.iter().all(|l| l.holder.is_some()),
                "{n} organisations, {r} replicas: one left unwatched, {counts:?}"
            );
            assert!(
                counts.iter().all(|c| (n / r..=target(n, r)).contains(c)),
                "{n} organisations, {r} replicas: {counts:?}"
            );
            // Settled: another round moves nothing.
            let before = world.clone();
            settle(&replicas, &mut world, 1);
            assert_eq!(before, world, "{n} organisations, {r} replicas");
        }
    }

    #[test]
    fn a_replica_joining_gets_its_share_and_the_others_move_only_their_surplus() {
        let mut world = leases(&vec![None; 30]);
        settle(&["a", "b", "c"], &mut world, 2);
        assert_eq!(counts(&["a", "b", "c"], &world), [10, 10, 10]);
        let before = world.clone();
        settle(&["a", "b", "c", "d"], &mut world, 2);
        let after = counts(&["a", "b", "c", "d"], &world);
        assert!(after.iter().all(|c| (7..=8).contains(c)), "{after:?}");
        let moved = before
            .iter()
            .zip(&world)
            .filter(|(b, a)| b.holder != a.holder)
            .count();
        assert_eq!(moved, after[3], "only what the newcomer took moved");
    }

    #[test]
    fn replicas_prefer_different_organisations() {
        let orgs: Vec<String> = (0..300).map(|i| format!("org-{i}")).collect();
        let top = |me: &str| {
            let mut ranked: Vec<&String> = orgs.iter().collect();
            ranked.sort_by_key(|org| std::cmp::Reverse(weight(me, org)));
            ranked.truncate(100);
            ranked
        };
        let (a, b) = (top("replica-a"), top("replica-b"));
        let common = a.iter().filter(|org| b.contains(org)).count();
        // Independent thirds share about a third of their members.
        assert!((15..=55).contains(&common), "{common} in common");
    }
}
