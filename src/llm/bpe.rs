//! Byte-pair encoding with a tiktoken table: the worker's token counter.
//!
//! The same algorithm as tiktoken (`encode_ordinary`): the text is split
//! into pieces by the encoding's pattern ([`super::pretokenize`]); a piece
//! that is a token is one token, otherwise its bytes are merged pairwise,
//! lowest rank first, until no adjacent pair is a token. Special tokens are
//! plain text. Unit tests check the token ids against tiktoken-rs itself.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use super::pretokenize;
use super::tokens::Encoding;

/// Token ranks (ids) by their bytes.
pub type Ranks = FxHashMap<Vec<u8>, u32>;

/// A tokeniser: an encoding's pattern and its ordinary tokens.
pub struct Bpe {
    encoding: Encoding,
    ranks: Ranks,
}

impl Bpe {
    /// A tokeniser for `encoding` with its ranks.
    pub fn new(encoding: Encoding, ranks: Ranks) -> Self {
        Bpe { encoding, ranks }
    }

    /// The number of tokens of `text`.
    pub fn count(&self, text: &str) -> usize {
        let mut n = 0;
        pretokenize::pieces(self.encoding, text, |piece| {
            n += if self.ranks.contains_key(piece) {
                1
            } else {
                merge(&self.ranks, piece).len() - 1
            }
        });
        n
    }

    /// The token ids of `text` (as tiktoken's `encode_ordinary`).
    pub fn encode_ordinary(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        pretokenize::pieces(self.encoding, text, |piece| {
            if let Some(&id) = self.ranks.get(piece) {
                ids.push(id);
                return;
            }
            let bounds = merge(&self.ranks, piece);
            for pair in bounds.windows(2) {
                ids.push(
                    self.ranks
                        .get(&piece[pair[0]..pair[1]])
                        .copied()
                        .unwrap_or(u32::MAX),
                );
            }
        });
        ids
    }
}

/// The token boundaries of `piece` (at least 2 bytes, or 1 that is not a
/// token): its start, each boundary and its end. Short pieces scan for the
/// lowest-ranked pair; long ones keep the candidate merges in a heap (as
/// tiktoken does, with the same result: lowest rank first, leftmost first).
fn merge(ranks: &Ranks, piece: &[u8]) -> Vec<usize> {
    if piece.len() < 2 {
        return vec![0, piece.len()];
    }
    if piece.len() < 100 {
        merge_small(ranks, piece)
    } else {
        merge_large(ranks, piece)
    }
}

fn rank_of(ranks: &Ranks, bytes: &[u8]) -> u32 {
    ranks.get(bytes).copied().unwrap_or(u32::MAX)
}

/// tiktoken's `_byte_pair_merge`: `parts[i]` is a boundary and the rank of
/// the pair starting there.
fn merge_small(ranks: &Ranks, piece: &[u8]) -> Vec<usize> {
    let mut parts: Vec<(usize, u32)> = Vec::with_capacity(piece.len() + 1);
    let mut min = (u32::MAX, usize::MAX);
    for i in 0..piece.len() - 1 {
        let rank = rank_of(ranks, &piece[i..i + 2]);
        if rank < min.0 {
            min = (rank, i);
        }
        parts.push((i, rank));
    }
    parts.push((piece.len() - 1, u32::MAX));
    parts.push((piece.len(), u32::MAX));
    // The rank of the token that would span parts[i]..parts[i + 3] once
    // parts[i + 1] is removed.
    let rank_at = |parts: &[(usize, u32)], i: usize| {
        if i + 3 < parts.len() {
            rank_of(ranks, &piece[parts[i].0..parts[i + 3].0])
        } else {
            u32::MAX
        }
    };
    while min.0 != u32::MAX {
        let i = min.1;
        if i > 0 {
            parts[i - 1].1 = rank_at(&parts, i - 1);
        }
        parts[i].1 = rank_at(&parts, i);
        parts.remove(i + 1);
        min = (u32::MAX, usize::MAX);
        for (i, &(_, rank)) in parts[..parts.len() - 1].iter().enumerate() {
            if rank < min.0 {
                min = (rank, i);
            }
        }
    }
    parts.into_iter().map(|(at, _)| at).collect()
}

/// A candidate merge of the token starting at `start` with the next one.
#[derive(PartialEq, Eq)]
struct Candidate {
    start: usize,
    rank: u32,
}

/// The heap pops the lowest rank first, then the leftmost.
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .rank
            .cmp(&self.rank)
            .then_with(|| other.start.cmp(&self.start))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The token starting at a byte: where it ends, where the next one ends,
/// the rank of their merge (`MAX`: none) and where the previous one starts.
struct Token {
    prev: usize,
    end: usize,
    next_end: usize,
    next_rank: u32,
}

/// tiktoken's `_byte_pair_merge_large`.
fn merge_large(ranks: &Ranks, piece: &[u8]) -> Vec<usize> {
    let mut tokens: Vec<Token> = (0..piece.len())
        .map(|i| Token {
            prev: i.wrapping_sub(1),
            end: i + 1,
            next_end: i + 2,
            next_rank: u32::MAX,
        })
        .collect();
    let mut heap = BinaryHeap::with_capacity(piece.len());
    for i in 0..piece.len() - 1 {
        if let Some(&rank) = ranks.get(&piece[i..i + 2]) {
            heap.push(Candidate { start: i, rank });
            tokens[i].next_rank = rank;
        }
    }
    let candidate = |tokens: &mut Vec<Token>,
                     heap: &mut BinaryHeap<Candidate>,
                     start: usize,
                     next_end: usize| {
        tokens[start].next_end = next_end;
        tokens[start].next_rank = u32::MAX;
        if next_end <= piece.len() {
            if let Some(&rank) = ranks.get(&piece[start..next_end]) {
                heap.push(Candidate { start, rank });
                tokens[start].next_rank = rank;
            }
        }
    };
    while let Some(left) = heap.pop() {
        if left.rank == u32::MAX {
            break;
        }
        if left.rank != tokens[left.start].next_rank {
            continue; // invalidated by an earlier merge
        }
        let left_start = left.start;
        let right_start = tokens[left_start].end;
        let right_end = tokens[left_start].next_end;
        let right_next_end = tokens[right_start].next_end;
        tokens[left_start].end = right_end;
        candidate(&mut tokens, &mut heap, left_start, right_next_end);
        if right_end < tokens.len() {
            tokens[right_end].prev = left_start;
        }
        if left_start > 0 {
            let prev_start = tokens[left_start].prev;
            candidate(&mut tokens, &mut heap, prev_start, right_end);
        }
        tokens[right_start].next_rank = u32::MAX;
    }
    let mut bounds = vec![0];
    let mut i = 0;
    while i < tokens.len() {
        i = tokens[i].end;
        bounds.push(i);
    }
    bounds
}
