//! Shuffle sharding as Kubernetes' dealer does it: a flow's hash value
//! deals it a hand of distinct queues out of the deck, the same hand for
//! the same hash, deck and hand size.

/// The most bits of the hash a deal may use (Kubernetes' `MaxHashBits`).
const MAX_HASH_BITS: f64 = 60.0;

/// The largest hand Kubernetes deals from a hash.
pub(crate) const MAX_HAND: usize = 15;

/// Deals hands of `hand_size` distinct cards out of `deck_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dealer {
    deck_size: usize,
    hand_size: usize,
}

impl Dealer {
    /// A dealer, if the sizes are ones Kubernetes accepts: a deck of
    /// 1..=2^26 cards, a hand of 1..=deck cards, and no more than 60 bits
    /// of hash used by a deal.
    pub(crate) fn new(deck_size: usize, hand_size: usize) -> Option<Dealer> {
        let fits = (1..=1 << 26).contains(&deck_size)
            && (1..=deck_size.min(MAX_HAND)).contains(&hand_size)
            && (deck_size as f64).log2() * hand_size as f64 <= MAX_HASH_BITS;
        fits.then_some(Dealer {
            deck_size,
            hand_size,
        })
    }

    /// The hand `hash` deals, in dealing order: the hash is read as a
    /// mixed-radix number (digits base deck, deck-1, ...), and each digit
    /// picks among the cards not dealt yet.
    pub(crate) fn deal(&self, mut hash: u64) -> ([usize; MAX_HAND], usize) {
        let mut remainders = [0usize; MAX_HAND];
        for (i, r) in remainders.iter_mut().enumerate().take(self.hand_size) {
            let radix = (self.deck_size - i) as u64;
            *r = (hash % radix) as usize;
            hash /= radix;
        }
        let mut hand = [0usize; MAX_HAND];
        for i in 0..self.hand_size {
            // Skip over the cards dealt before, latest first, as
            // Kubernetes does.
            let mut card = remainders[i];
            for j in (0..i).rev() {
                if card >= remainders[j] {
                    card += 1;
                }
            }
            hand[i] = card;
        }
        (hand, self.hand_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hand(d: Dealer, hash: u64) -> Vec<usize> {
        let (cards, n) = d.deal(hash);
        cards[..n].to_vec()
    }

    #[test]
    fn deals_as_kubernetes_does() {
        // Kubernetes' Deal, by hand, for hash 12345 from 10 cards, hand 3:
        // remainders 12345%10=5 (1234 left), 1234%9=1 (137), 137%8=1;
        // cards 5; 1 (1 < 5); 1 -> 2 (>= 1) -> 2 (< 5).
        let d = Dealer::new(10, 3).unwrap();
        assert_eq!(hand(d, 12345), [5, 1, 2]);
        // The same inputs always deal the same hand.
        assert_eq!(hand(d, 12345), hand(d, 12345));
        // Hash 0 deals the first cards in order.
        assert_eq!(hand(Dealer::new(64, 6).unwrap(), 0), [0, 1, 2, 3, 4, 5]);
        // A hash whose first digits are the top of each radix deals the
        // deck from the top: 9, then 8 of 0..8 skips nothing -> 8.
        assert_eq!(hand(d, 9 + 10 * 8), [9, 8, 0]);
    }

    #[test]
    fn hands_are_distinct_cards_of_the_deck() {
        let d = Dealer::new(128, 6).unwrap();
        for hash in (0..2000u64).map(|h| h.wrapping_mul(0x9E37_79B9_7F4A_7C15)) {
            let mut cards = hand(d, hash);
            assert!(cards.iter().all(|c| *c < 128));
            cards.sort_unstable();
            cards.dedup();
            assert_eq!(cards.len(), 6, "hash {hash}");
        }
    }

    #[test]
    fn refuses_what_kubernetes_refuses() {
        assert!(Dealer::new(0, 1).is_none());
        assert!(Dealer::new(4, 5).is_none());
        assert!(Dealer::new(4, 0).is_none());
        // 2^20 cards, hand 4: 80 bits of hash.
        assert!(Dealer::new(1 << 20, 4).is_none());
        assert!(Dealer::new(1, 1).is_some());
    }
}
