"""The built-in consolidation policy: importance, duplicate detection and metadata-based facts.

Each hook is ``trylast`` so any plugin's answer takes precedence.
"""

from __future__ import annotations

import itertools
import re

from agentmem.hookspecs import hookimpl
from agentmem.statement import same_statement
from agentmem.types import Fact, Item

RECENCY_DAYS = 30.0
# Rememberings of one statement this close in time merge (a retried or doubled write); further
# apart they are separate events, each found by its own time.
MERGE_WINDOW_S = 1.0
# A word of letters in any script, with inner hyphens or apostrophes ("Zürich", "Jean-Luc",
# "O'Brien", "Don't"); it is capitalised when an upper-case letter is followed by a lower-case one
# ("São", "McDonald", not "OK"). A possessive "'s" is not part of the name; a contraction is no name.
_TOKEN = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
_POSSESSIVE = re.compile(r"['\u2019]s$")
_CONTRACTION = re.compile(r"['\u2019][^\W\d_]*$")
_SENTENCE_START = re.compile(r"(^|[.!?:;\"\u201c]\s*)$")
# titles that end in a full stop without ending a sentence, and join the name they precede
_TITLES = frozenset({"Dr", "Mr", "Mrs", "Ms", "Mx", "Prof", "St", "Mt", "Sr", "Jr", "Rev", "Capt", "Gen",
                     "Sen", "Rep", "Gov", "Lt", "Col", "Sgt"})
# never names, wherever they stand
_STOP = frozenset({"I", "The", "A", "An", "It", "This", "That", "We", "You", "He", "She", "They", "My",
                   "Hey", "Hi", "Yes", "No", "Oh", "Thanks", "Thank", "Wow", "So", "And", "But", "What",
                   "When", "Where", "Why", "How", "Who", "Did", "Do", "Is", "Are", "Was", "Can", "Just",
                   "January", "February", "March", "April", "May", "June", "July", "August", "September",
                   "October", "November", "December", "Monday", "Tuesday", "Wednesday", "Thursday",
                   "Friday", "Saturday", "Sunday", "Today", "Yesterday", "Tomorrow"})
# Words that open sentences: function words, time words, interjections, common verbs, adverbs,
# adjectives and nouns. A sentence-initial capitalised word is a name unless it is one of these, ends
# in "ing", or the text also uses it in lower case; it is a name when the text capitalises it
# mid-sentence as well ("Will you ask Will?").
_COMMON = frozenset({
    "a", "about", "above", "after", "again", "against", "all", "almost", "along", "also", "although", "always",
    "am", "among", "an", "and", "another", "any", "anybody", "anyone", "anything", "anyway", "anyways", "are",
    "around", "as", "at", "away", "back", "be", "because", "been", "before", "being", "below", "besides", "between",
    "both", "but", "by", "can", "could", "did", "do", "does", "done", "down", "during", "each", "either", "else",
    "even", "ever", "every", "everybody", "everyone", "everything", "few", "for", "from", "had", "has", "have",
    "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "however", "i", "if", "in", "instead",
    "into", "is", "it", "its", "itself", "just", "least", "less", "let", "like", "many", "maybe", "me", "meanwhile",
    "might", "mine", "more", "most", "much", "must", "my", "myself", "neither", "never", "next", "no", "nobody",
    "none", "nor", "not", "now", "of", "off", "often", "on", "once", "one", "only", "or", "other", "others",
    "otherwise", "our", "ours", "ourselves", "out", "over", "own", "perhaps", "plus", "quite", "rather", "same",
    "she", "should", "since", "so", "some", "somebody", "someone", "something", "sometimes", "soon", "still",
    "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they",
    "this", "those", "though", "through", "thus", "to", "together", "too", "under", "unless", "until", "up", "upon",
    "us", "very", "was", "we", "well", "were", "what", "whatever", "when", "whenever", "where", "whether", "which",
    "while", "who", "whom", "whose", "why", "will", "with", "within", "without", "would", "yet", "you", "your",
    "yours", "yourself", "yourselves", "gonna", "wanna", "gotta",
    "today", "tonight", "yesterday", "tomorrow", "morning", "afternoon", "evening", "night", "last", "later",
    "earlier", "first", "second", "third", "week", "weekend", "month", "year", "day", "days", "time", "times",
    "hey", "hi", "hello", "yo", "oh", "ah", "aw", "aww", "awww", "wow", "woah", "whoa", "yay", "yup", "yep", "yeah",
    "yea", "yes", "nope", "nah", "hmm", "mm", "mmm", "um", "uh", "oops", "oof", "ugh", "yum", "yikes", "woohoo",
    "hooray", "haha", "lol", "omg", "ooh", "ok", "okay", "alright", "cheers", "bye", "goodbye", "congrats",
    "congratulations", "thanks", "thank", "sorry", "please", "welcome", "bummer", "anytime", "dear", "gosh", "geez",
    "jeez",
    "absolutely", "actually", "apparently", "basically", "certainly", "clearly", "currently", "definitely",
    "especially", "eventually", "exactly", "finally", "fortunately", "unfortunately", "thankfully", "hopefully",
    "honestly", "ideally", "interestingly", "lately", "luckily", "naturally", "obviously", "overall", "personally",
    "probably", "really", "recently", "seriously", "similarly", "surely", "totally", "truly", "usually",
    "generally", "highly", "already",
    "good", "great", "nice", "cool", "awesome", "amazing", "wonderful", "fantastic", "beautiful", "lovely", "glad",
    "happy", "sad", "proud", "excited", "exciting", "interesting", "impressive", "incredible", "crazy", "cute",
    "fun", "funny", "tough", "hard", "easy", "best", "better", "little", "small", "big", "long", "short", "super",
    "pretty", "lucky", "sweet", "perfect", "true", "sure", "right", "wrong", "fine", "new", "old", "real",
    "different", "special", "important", "mixed", "agreed",
    "appreciate", "agree", "believe", "bet", "catch", "chat", "check", "cherish", "come", "count", "enjoy", "feel",
    "find", "follow", "get", "give", "go", "guess", "hang", "hope", "imagine", "keep", "know", "learn",
    "listen", "look", "love", "make", "mind", "miss", "need", "play", "remember", "say", "see", "seem",
    "send", "sound", "stay", "take", "talk", "tell", "think", "try", "wait", "want", "watch", "wish", "work",
    "looks", "feels", "makes", "seems", "sounds", "reminds", "means", "helps", "works", "gets", "takes", "goes",
    "says", "thinks", "knows", "wants", "loves", "likes", "went", "got", "made", "took", "saw", "knew", "thought",
    "felt", "wanted", "needed", "tried", "kept", "told", "said", "asked", "hoped", "started", "finished", "worked",
    "found", "called", "came", "gave", "seen", "gone", "loved", "liked",
    "life", "way", "thing", "things", "people", "family", "friends", "kids", "nature", "art", "music", "home",
    "school", "lots", "kind", "sort", "part",
})
# a short quoted span without sentence punctuation inside: a title, if its words are capitalised
_QUOTED = re.compile(r"[\"\u201c]([^\W\d_][^\"\u201d.,!?;:]{1,58}[^\"\u201d.,!?;:\s])[\"\u201d]")
_TITLE_SMALL = frozenset({"of", "the", "a", "an", "and", "in", "on", "to", "with", "for", "at", "by", "or"})


@hookimpl(trylast=True)
def score_item(item: Item, novelty: float, now: float) -> float:
    age_days = max(0.0, now - (item.event_time or item.created_at)) / 86400.0
    recency = 0.5 ** (age_days / RECENCY_DAYS)
    repeats = min(1.0, (item.count - 1) / 4.0)
    return round(0.5 * novelty + 0.3 * recency + 0.2 * repeats, 6)


@hookimpl(trylast=True)
def should_merge(item: Item, existing: Item, similarity: float) -> bool:
    """Merge only the same statement said again (:func:`agentmem.statement.same_statement`: case,
    whitespace, repeated or final punctuation may differ) with the same metadata (so the same
    speaker) and the same time (event time, else when remembered, at most ``MERGE_WINDOW_S`` apart).
    Anything else stays its own item: a filter or time bound that found it before consolidation
    finds it after. ``similarity`` is not enough (MiniLM: "like" / "dislike" ~0.9, any two emoji 1.0)."""
    if not same_statement(item.text, existing.text) or item.metadata != existing.metadata:
        return False
    if (item.event_time is None) != (existing.event_time is None):
        return False
    t_item = item.created_at if item.event_time is None else item.event_time
    t_existing = existing.created_at if existing.event_time is None else existing.event_time
    return abs(t_item - t_existing) <= MERGE_WINDOW_S


@hookimpl(trylast=True)
def extract_facts(item: Item) -> list[Fact]:
    """Facts found offline, without a model: who said it (``speaker`` metadata) mentioned which names
    and titles (see :func:`names`); without a speaker, which names were mentioned together; and any
    ``facts`` given explicitly in metadata as [subject, relation, object] triples."""
    facts: list[Fact] = []
    explicit = item.metadata.get("facts")
    if isinstance(explicit, list):
        for triple in explicit:
            if isinstance(triple, list | tuple) and len(triple) == 3 and all(
                    isinstance(x, str) and x.strip() for x in triple):
                facts.append(Fact(triple[0], triple[1], triple[2], item.id))
    speaker = item.metadata.get("speaker")
    found = list(dict.fromkeys(names(item.text)))
    if isinstance(speaker, str) and speaker.strip():
        facts += [Fact(speaker, "mentioned", name, item.id) for name in found if name != speaker]
    else:
        facts += [Fact(a, "mentioned with", b, item.id) for a, b in itertools.pairwise(found)]
    return facts


def names(text: str) -> list[str]:
    """Names in ``text``, in order of appearance: runs of capitalised words in any script ("São
    Paulo"), a title joined to its name ("Dr. Smith"), a sentence's first word when it is not a
    common word (see ``_COMMON``), and quoted titles ("The Alchemist" -> Alchemist)."""
    tokens = []
    for m in _TOKEN.finditer(text):
        word = m.group()
        if "'" in word or "\u2019" in word:  # consolidation runs this on every item: no regex for most words
            word = _POSSESSIVE.sub("", word)
        tokens.append((m.start(), m.start() + len(word), word))
    caps = [_capitalised(w) for _, _, w in tokens]
    found = []
    if any(caps):
        lower = {w for _, _, w in tokens if w.islower()}
        initial = [bool(c) and _SENTENCE_START.search(text[tokens[i - 1][1] if i else 0:tokens[i][0]]) is not None
                   for i, c in enumerate(caps)]
        mid_caps = {tokens[i][2] for i, c in enumerate(caps) if c and not initial[i]}
    i = 0
    while i < len(tokens):
        if not caps[i]:
            i += 1
            continue
        run = [tokens[i]]
        starts = initial[i]
        while i + 1 < len(tokens) and caps[i + 1] and _joins(run[-1][2], text[run[-1][1]:tokens[i + 1][0]]):
            i += 1
            run.append(tokens[i])
        i += 1
        first = run[0][2]
        if starts and first not in mid_caps and (first.lower() in _COMMON or first.lower() in lower
                                                  or first.endswith("ing")):
            run = run[1:]
        while run and run[0][2] in _STOP:
            run = run[1:]
        if run and not (len(run) == 1 and run[0][2] in _TITLES):
            found.append((run[0][0], " ".join(text[run[0][0]:run[-1][1]].split())))
    for m in _QUOTED.finditer(text):
        words = m.group(1).split()
        if len(words) <= 6 and all(w[0].isupper() or w in _TITLE_SMALL for w in words):
            while words and words[0] in _STOP:
                words = words[1:]
            if words:
                found.append((m.start(), " ".join(words)))
    return [name for _, name in sorted(found)]


def _capitalised(word: str) -> bool:
    return len(word) > 1 and word[0].isupper() and word[1].islower() and not (
        ("'" in word or "\u2019" in word) and _CONTRACTION.search(word))


def _joins(previous: str, gap: str) -> bool:
    """Whether two capitalised words with ``gap`` between them belong to one name."""
    return gap.isspace() or (previous in _TITLES and gap.startswith(".") and gap[1:].isspace())
