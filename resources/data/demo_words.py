"""The demo data's vocabulary: topic words, names, places, review phrases (used by
generate_demo_data.py, beside it). Changing a word changes the shipped files; regenerate
them and the byte-for-byte test's reference together."""

from __future__ import annotations

TOPICS = {  # label -> nouns and verbs that only this topic uses
    "business": (
        "market company price investor profit bank startup share budget deal factory customer "
        "merger salary shop revenue".split(),
        "bought sold invested merged hired traded funded priced".split(),
    ),
    "science": (
        "lab experiment theory molecule telescope researcher cell study planet protein sample "
        "microscope physicist fossil vaccine satellite".split(),
        "measured discovered tested observed published modelled analysed confirmed".split(),
    ),
    "sports": (
        "team match coach goal league stadium player season final striker referee trophy "
        "keeper race tournament fans".split(),
        "won lost scored trained defended played beat coached".split(),
    ),
    "travel": (
        "hotel flight beach museum island train guide city tour harbour airport passport "
        "cruise village luggage ferry".split(),
        "visited booked explored crossed toured reached boarded hiked".split(),
    ),
}
LABELS = sorted(TOPICS)
DETS = "the a our their this every".split()
ADJS = "new old local large small early late busy quiet famous second main".split()
TAILS = [
    "this week",
    "last year",
    "in the north",
    "after a long wait",
    "on monday",
    "again",
    "for the first time",
    "today",
    "before the winter",
    "at last",
    "by noon",
    "in the spring",
]
SAY = "said announced reported confirmed expected".split()
STATES = ["delayed", "cancelled", "in the news", "a surprise", "on time", "much talked about"]
FIRST = (
    "anna bruno chen dara emil fatima greta hugo ines jonas kofi lena marek nadia omar pia".split()
)
LAST = "silva novak berg okafor tanaka moreau lindqvist haddad costa weber".split()
PLACES = [
    "lisbon",
    "oslo",
    "kyoto",
    "lima",
    "cairo",
    "dublin",
    "quebec",
    "perth",
    "port elna",
    "san mirra",
    "vellin",
    "north haven",
]
ORGS = [
    "nordbank",
    "helix labs",
    "bluewave",
    "atlas united",
    "sunair",
    "corvid media",
    "kestrel group",
    "orbis",
    "greenfield trust",
    "polar works",
]
POSITIVE = (
    "great excellent wonderful lovely superb pleasant brilliant friendly good fantastic "
    "comfortable charming helpful perfect"
).split()
NEGATIVE = (
    "terrible awful poor disappointing dreadful rude broken boring bad dirty noisy slow "
    "horrible useless"
).split()
PRAISE = [
    "i loved it",
    "we would go back",
    "it was worth every penny",
    "we enjoyed every minute",
    "i would recommend it",
    "it made our day",
]
BLAME = [
    "i hated it",
    "it was a waste of money",
    "we regret it",
    "we will never go back",
    "i want a refund",
    "it ruined our day",
]
ADVERBS = "really quite very truly rather so pretty".split()
NUMBERS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()
OPPOSITES = [
    ("good", "bad"),
    ("early", "late"),
    ("old", "new"),
    ("large", "small"),
    ("busy", "quiet"),
    ("won", "lost"),
    ("bought", "sold"),
    ("north", "south"),
    ("great", "terrible"),
    ("friendly", "rude"),
]
