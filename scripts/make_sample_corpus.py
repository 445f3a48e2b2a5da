#!/usr/bin/env python3
"""Writes the bundled sample corpus (hmtl/data/sample/) from the documents below, the one source of truth.

The 36 short news-like documents were written for this package (invented people and companies, real places); they
are not taken from any corpus. Each split is written twice:

- ``sample.<split>.conll``: CoNLL-2003 layout, ``token POS chunk NER``, IOB1 NER and chunk tags, ``-DOCSTART-``
  between documents (read with the ``conll2003`` reader);
- ``sample.<split>.jsonl``: DyGIE JSON lines, ``doc_key``, ``sentences``, ``ner`` and ``relations`` per sentence,
  ``clusters``; document-level inclusive offsets (read with the ``dygie`` reader).

Annotation (hand-made) is inline in the pre-tokenized sentences (tokens separated by spaces):

- ``[Ada Lovelace|PER]`` a named entity (PER, ORG, LOC, MISC); its coreference key is its text;
- ``[Lovelace|PER@ada]`` a named entity with the coreference key ``ada``;
- ``{she@ada}`` a nominal or pronominal mention of ``ada`` (coreference only, not NER); mentions may nest:
  ``{the [Oslo|LOC] company@norland}``;
- relations are listed per sentence as ``(head key, label, tail key)`` between named entities of that sentence.

Coreference clusters are the keys with two or more mentions (singletons are dropped, as in OntoNotes and SciERC).
POS tags come from the lexicon below (context-free, PTB tags) and chunk tags from simple rules over them, so those
two columns are approximate; NER, relations and coreference are the annotated layers.

Usage: ``python scripts/make_sample_corpus.py [--out DIR] [--check]`` (``--check`` exits 1 when the files in DIR
differ from what this script writes).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package

from hmtl.data.document import Span  # noqa: E402
from hmtl.data.tagging import spans_to_tags  # noqa: E402

OUT = ROOT / "hmtl" / "data" / "sample"
ENTITY_TYPES = ("PER", "ORG", "LOC", "MISC")
RELATION_SIGNATURES = {
    "Work_For": ("PER", "ORG"),
    "Live_In": ("PER", "LOC"),
    "Located_In": ("LOC", "LOC"),
    "OrgBased_In": ("ORG", "LOC"),
}

# (split, [(sentence, [(head key, relation, tail key), ...]), ...])
DOCUMENTS: list[tuple[str, list[tuple[str, list[tuple[str, str, str]]]]]] = [
    # ---------------------------------------------------------------- train (24)
    ("train", [
        ("[Mara Ellison|PER@mara] , the chief executive of [Halden Biotech|ORG@halden] , said on Monday that {she@mara} "
         "would open a new laboratory in [Leeds|LOC@leeds] .", [("mara", "Work_For", "halden")]),
        ("[Halden|ORG@halden] , which is based in [Cambridge|LOC@cambridge] , expects the site to employ 200 people "
         "by next year .", [("halden", "OrgBased_In", "cambridge")]),
        ("[Ellison|PER@mara] told reporters that {her@mara} team had spent/VBN two years looking for the right "
         "building .", []),
    ]),
    ("train", [
        ("[Tomas Reyes|PER@tomas] , a fisherman who lives in [Vigo|LOC@vigo] , won the [Atlantic Rowing Prize|MISC] "
         "on Saturday .", [("tomas", "Live_In", "vigo")]),
        ("{He@tomas} crossed the finish line in [Lisbon|LOC] , a city {he@tomas} had never visited before .", []),
        ("[Vigo|LOC@vigo] is a port in [Spain|LOC@spain] , and {its@vigo} mayor promised {the rower@tomas} a "
         "parade .", [("vigo", "Located_In", "spain")]),
    ]),
    ("train", [
        ("Shares in [Norland Energy|ORG@norland] fell 4 percent after {the [Oslo|LOC@oslo] company@norland} cut "
         "{its@norland} forecast .", [("norland", "OrgBased_In", "oslo")]),
        ("Analysts at [Brightwater Capital|ORG@brightwater] said the decision surprised investors .", []),
        ("[Norland|ORG@norland] said {it@norland} would name a new chief executive in March .", []),
    ]),
    ("train", [
        ("[Priya Natarajan|PER@priya] has joined/VBN [Kestrel Airlines|ORG@kestrel] as head of safety .",
         [("priya", "Work_For", "kestrel")]),
        ("[Natarajan|PER@priya] previously worked for the [European|MISC] aviation regulator in [Cologne|LOC@cologne] , where "
         "{she@priya} still lives .", [("priya", "Live_In", "cologne")]),
        ("[Kestrel|ORG@kestrel] , based in [Dublin|LOC@dublin] , flies to 40 cities .",
         [("kestrel", "OrgBased_In", "dublin")]),
    ]),
    ("train", [
        ("Heavy rain closed roads across [Cumbria|LOC@cumbria] on Tuesday , and officials said {the county@cumbria} "
         "could see more flooding .", []),
        ("[Keswick|LOC@keswick] , a town in [Cumbria|LOC@cumbria] , was cut/VBN off for several hours .",
         [("keswick", "Located_In", "cumbria")]),
        ("[Daniel Okafor|PER@daniel] , who runs a bakery in {the town@keswick} , said {he@daniel} had never seen the "
         "river so high .", []),
        ("{His@daniel} shop will stay closed until the water goes down .", []),
    ]),
    ("train", [
        ("The [Riverside Film Festival|MISC@festival] opens in [Toronto|LOC@toronto] this week with a documentary "
         "about [Canadian|MISC] miners .", []),
        ("{Its@festival} director , [Helen Marsh|PER@helen] , said ticket sales were the highest in a decade .", []),
        ("[Marsh|PER@helen] , who has lived in [Toronto|LOC@toronto] since 1998 , will step down after {this year 's "
         "festival@festival} .", [("helen", "Live_In", "toronto")]),
    ]),
    ("train", [
        ("[Grayson Motors|ORG@grayson] will build an electric van at {its@grayson} plant in [Coventry|LOC@coventry] , "
         "{the company@grayson} said on Wednesday .", [("grayson", "OrgBased_In", "coventry")]),
        ("Union leader [Ruth Abbott|PER@ruth] welcomed the plan and said {her@ruth} members had waited years for "
         "it .", []),
        ("[Grayson|ORG@grayson] employs about 3,000 people in [Britain|LOC@britain] .",
         [("grayson", "OrgBased_In", "britain")]),
    ]),
    ("train", [
        ("[Lena Hoffmann|PER@lena] , a [German|MISC] chess player , won the [Baltic Open|MISC] in [Riga|LOC] on "
         "Sunday .", []),
        ("{The 19-year-old@lena} beat {her@lena} former coach in the final round .", []),
        ("[Hoffmann|PER@lena] lives in [Hamburg|LOC@hamburg] and plays for [Schachklub Nord|ORG@nord] .",
         [("lena", "Live_In", "hamburg"), ("lena", "Work_For", "nord")]),
    ]),
    ("train", [
        ("The [World Health Organization|ORG@who] has sent {a team@team} to [Mombasa|LOC@mombasa] after an outbreak "
         "of cholera .", []),
        ("[Mombasa|LOC@mombasa] , the second largest city in [Kenya|LOC@kenya] , reported 60 cases last week .",
         [("mombasa", "Located_In", "kenya")]),
        ("[Amina Wekesa|PER@amina] , who leads {the team@team} , said {it@team} would stay for a month .", []),
    ]),
    ("train", [
        ("[Jonas Berg|PER@jonas] resigned as finance minister of [Sweden|LOC] on Thursday .", []),
        ("{He@jonas} had been criticised over a contract awarded to [Vasa Consulting|ORG@vasa] , a firm based in "
         "[Stockholm|LOC@stockholm] .", [("vasa", "OrgBased_In", "stockholm")]),
        ("Prime Minister [Karin Lund|PER@karin] said {she@karin} accepted {his@jonas} resignation with regret .", []),
    ]),
    ("train", [
        ("[Blue Harbour|ORG@harbour] , a shipping firm from [Rotterdam|LOC@rotterdam] , has bought two cargo ships "
         "from a [Korean|MISC] yard .", [("harbour", "OrgBased_In", "rotterdam")]),
        ("{The firm@harbour} said the ships would carry grain between [Rotterdam|LOC@rotterdam] and [Gdansk|LOC] .",
         []),
        ("{Its@harbour} founder , [Pieter de Vries|PER@pieter] , started {the business@harbour} with a single barge "
         "in 1987 .", []),
    ]),
    ("train", [
        ("[Sofia Alves|PER@sofia] , a teacher from [Porto|LOC@porto] , has written a novel about {her@sofia} "
         "grandmother .", [("sofia", "Live_In", "porto")]),
        ("{The book@book} , called [Salt and Stone|MISC@book] , will be published by [Marlowe Press|ORG] in May .",
         []),
        ("[Alves|PER@sofia] said {she@sofia} wrote most of {it@book} on the train to work .", []),
    ]),
    ("train", [
        ("[Arctic Data|ORG@arctic] , a start-up in [Tromso|LOC@tromso] , has raised 12 million euros from "
         "investors .", [("arctic", "OrgBased_In", "tromso")]),
        ("{The company@arctic} builds sensors that/WDT measure sea ice for shipping firms .", []),
        ("{Its@arctic} chief executive , [Erik Haugland|PER@erik] , said {he@erik} plans to hire 30 engineers .", []),
    ]),
    ("train", [
        ("Police in [Marseille|LOC@marseille] arrested two men on Friday after a robbery at a jewellery shop .", []),
        ("The shop belongs to [Claire Dubois|PER@claire] , who told local radio that {she@claire} was not hurt .",
         []),
        ("[Marseille|LOC@marseille] is the second largest city in [France|LOC] .",
         [("marseille", "Located_In", "France")]),
    ]),
    ("train", [
        ("[Kofi Mensah|PER@kofi] scored twice as [Accra Lions|ORG@lions] beat [Kumasi United|ORG] 3-1 on Sunday .",
         [("kofi", "Work_For", "lions")]),
        ("{The striker@kofi} , who joined {the club@lions} in June , now has 11 goals this season .", []),
        ("[Lions|ORG@lions] coach [Samuel Boateng|PER@samuel] said {he@samuel} was proud of {his@samuel} players .",
         [("samuel", "Work_For", "lions")]),
    ]),
    ("train", [
        ("[Northfield Dairy|ORG@dairy] will close {its@dairy} factory in [Wrexham|LOC@wrexham] next spring .",
         [("dairy", "OrgBased_In", "wrexham")]),
        ("{About 150 workers@workers} will lose {their@workers} jobs , {the company@dairy} said .", []),
        ("Local politician [Gareth Pryce|PER@gareth] , who lives in [Wrexham|LOC@wrexham] , called the decision a "
         "blow to {the town@wrexham} .", [("gareth", "Live_In", "wrexham")]),
    ]),
    ("train", [
        ("The [Nordic Film Awards|MISC] were held in [Copenhagen|LOC] on Saturday night .", []),
        ("[Ingrid Holm|PER@ingrid] won best actress for {her@ingrid} role in [Winter Light|MISC@light] , a drama set "
         "in [Bergen|LOC] .", []),
        ("{The actress@ingrid} thanked {her@ingrid} husband and the [Danish|MISC] crew who made {the film@light} .",
         []),
    ]),
    ("train", [
        ("[Rafael Costa|PER@rafael] , an engineer at [Sol Verde Energy|ORG@solverde] , has designed {a cheaper solar "
         "panel@panel} .", [("rafael", "Work_For", "solverde")]),
        ("[Costa|PER@rafael] tested {the panel@panel} on rooftops in [Recife|LOC@recife] , where {he@rafael} grew up .",
         [("rafael", "Live_In", "recife")]),
        ("[Sol Verde|ORG@solverde] , which is based in [Sao Paulo|LOC@saopaulo] , hopes to sell {it@panel} next "
         "year .", [("solverde", "OrgBased_In", "saopaulo")]),
    ]),
    ("train", [
        ("A fire broke out at the [Pembroke Museum|ORG@museum] in [Halifax|LOC@halifax] late on Tuesday .",
         [("museum", "OrgBased_In", "halifax")]),
        ("Firefighters saved most of the paintings , said {the museum@museum} 's director , "
         "[Alan Whitby|PER@alan] .", []),
        ("[Whitby|PER@alan] said {he@alan} hoped to reopen {the museum@museum} within a year .", []),
    ]),
    ("train", [
        ("[Yuki Tanaka|PER@yuki] , a scientist at [Kansai University|ORG@kansai] , has found {a new species of "
         "frog@frog} in [Borneo|LOC] .", [("yuki", "Work_For", "kansai")]),
        ("{The frog@frog} is smaller than a coin , and {it@frog} lives in only one valley .", []),
        ("[Tanaka|PER@yuki] said {her@yuki} team spent three months in the forest .", []),
    ]),
    ("train", [
        ("[Eastgate Bank|ORG@eastgate] has agreed to buy [Harlow Savings|ORG@harlow] for 900 million pounds .", []),
        ("[Eastgate|ORG@eastgate] , based in [Manchester|LOC@manchester] , said the deal would create the fifth "
         "largest lender in [Britain|LOC] .", [("eastgate", "OrgBased_In", "manchester")]),
        ("[Harlow Savings|ORG@harlow] chairman [Peter Quinn|PER@peter] said {his@peter} board supported the "
         "offer .", [("peter", "Work_For", "harlow")]),
    ]),
    ("train", [
        ("[Anna Kowalski|PER@anna] ran the [Warsaw Marathon|MISC] in two hours and 31 minutes on Sunday .", []),
        ("{The [Polish|MISC] runner@anna} , who lives in [Krakow|LOC@krakow] , broke {her@anna} own national "
         "record .", []),
        ("[Krakow|LOC@krakow] lies in southern [Poland|LOC@poland] .", [("krakow", "Located_In", "poland")]),
    ]),
    ("train", [
        ("[Greenway Transport|ORG@greenway] has won/VBN a contract to run buses in [Cork|LOC@cork] .",
         [("greenway", "OrgBased_In", "cork")]),
        ("[Cork|LOC@cork] is a city in [Ireland|LOC@ireland] , and {its@cork} council chose {the firm@greenway} "
         "after a year of talks .", [("cork", "Located_In", "ireland")]),
        ("[Greenway|ORG@greenway] manager [Sean Doyle|PER@sean] said {he@sean} would hire 80 drivers .",
         [("sean", "Work_For", "greenway")]),
    ]),
    ("train", [
        ("[Hassan Farouk|PER@hassan] , a chef from [Alexandria|LOC@alexandria] , opened {a restaurant@restaurant} in "
         "[Berlin|LOC] last month .", [("hassan", "Live_In", "alexandria")]),
        ("{He@hassan} cooks [Egyptian|MISC] dishes that/WDT {his@hassan} mother taught {him@hassan} .", []),
        ("Critics at the [Berliner Tagblatt|ORG] called {the restaurant@restaurant} the best new opening of the "
         "year .", []),
    ]),
    # ---------------------------------------------------------------- dev (6)
    ("dev", [
        ("[Oliver Grant|PER@oliver] has been named head coach of [Severn Valley|ORG@severn] , {the rugby "
         "club@severn} said on Friday .", [("oliver", "Work_For", "severn")]),
        ("{He@oliver} replaces [Neil Cartwright|PER] , who left in May .", []),
        ("[Grant|PER@oliver] , who lives in [Gloucester|LOC@gloucester] , played for {the club@severn} for ten "
         "years .", [("oliver", "Live_In", "gloucester")]),
    ]),
    ("dev", [
        ("[Tessa Lindqvist|PER@tessa] , a researcher at [Uppsala University|ORG@uppsala] , has mapped the songs of "
         "{humpback whales@whales} near [Iceland|LOC] .", [("tessa", "Work_For", "uppsala")]),
        ("{She@tessa} recorded {the whales@whales} for three summers from a small boat .", []),
        ("[Lindqvist|PER@tessa] said {their@whales} songs change every year .", []),
    ]),
    ("dev", [
        ("[Kinross Mining|ORG@kinross] said on Tuesday that {it@kinross} had found gold near "
         "[Kalgoorlie|LOC@kalgoorlie] .", []),
        ("[Kalgoorlie|LOC@kalgoorlie] is a town in [Western Australia|LOC@wa] .",
         [("kalgoorlie", "Located_In", "wa")]),
        ("[Kinross|ORG@kinross] , based in [Perth|LOC@perth] , will start drilling in October , chief executive "
         "[Laura Finch|PER@laura] said .", [("kinross", "OrgBased_In", "perth"), ("laura", "Work_For", "kinross")]),
    ]),
    ("dev", [
        ("[Miguel Herrera|PER@miguel] , a taxi driver in [Bogota|LOC@bogota] , returned {a bag holding 20,000 "
         "dollars@bag} to {{its@bag} owner@owner} .", [("miguel", "Live_In", "bogota")]),
        ("{The owner@owner} , a [Spanish|MISC] tourist , gave {him@miguel} a reward .", []),
    ]),
    ("dev", [
        ("[Orion Telecom|ORG@orion] will cut 500 jobs in [Finland|LOC@finland] , {the company@orion} said on "
         "Monday .", [("orion", "OrgBased_In", "finland")]),
        ("{Its@orion} chief executive , [Mikko Aaltola|PER@mikko] , blamed falling sales of older phones .", []),
        ("{Unions in [Helsinki|LOC]@unions} said {they@unions} would fight the plan .", []),
        ("[Aaltola|PER@mikko] said {he@mikko} would meet {them@unions} next week .", []),
    ]),
    ("dev", [
        ("[Elena Petrova|PER@elena] , a [Bulgarian|MISC] pianist , will play at the [Vienna Spring Festival|MISC] in "
         "April .", []),
        ("[Petrova|PER@elena] lives in [Sofia|LOC@sofia] , where {she@elena} teaches at the [National Academy of "
         "Music|ORG@academy] .", [("elena", "Live_In", "sofia"), ("elena", "Work_For", "academy")]),
        ("[Sofia|LOC@sofia] is the capital of [Bulgaria|LOC@bulgaria] .", [("sofia", "Located_In", "bulgaria")]),
    ]),
    # ---------------------------------------------------------------- test (6)
    ("test", [
        ("[Fatima Zahra|PER@fatima] has become the first woman to lead [Atlas Railways|ORG@atlas] .",
         [("fatima", "Work_For", "atlas")]),
        ("{She@fatima} joined {the company@atlas} , which is based in [Casablanca|LOC@casablanca] , as an engineer "
         "in 2004 .", []),
        ("[Casablanca|LOC@casablanca] is the largest city in [Morocco|LOC@morocco] .",
         [("casablanca", "Located_In", "morocco")]),
    ]),
    ("test", [
        ("[Henrik Dahl|PER@henrik] , a farmer near [Aarhus|LOC@aarhus] , has grown {a pumpkin that/WDT weighs 800 "
         "kilograms@pumpkin} .", [("henrik", "Live_In", "aarhus")]),
        ("{He@henrik} will show {it@pumpkin} at the [Jutland Harvest Fair|MISC] next week .", []),
        ("[Dahl|PER@henrik] said {his@henrik} secret was patience and a lot of rain .", []),
    ]),
    ("test", [
        ("[Silverline Software|ORG@silverline] has moved {its@silverline} headquarters from [Leeds|LOC] to "
         "[Edinburgh|LOC@edinburgh] .", [("silverline", "OrgBased_In", "edinburgh")]),
        ("[Edinburgh|LOC@edinburgh] , in [Scotland|LOC@scotland] , offered {the firm@silverline} lower rents .",
         [("edinburgh", "Located_In", "scotland")]),
        ("Founder [Callum Reid|PER@callum] said {he@callum} expected {the company@silverline} to double in size .",
         []),
    ]),
    ("test", [
        ("[Nadia Haddad|PER@nadia] , a reporter for [Levant Daily|ORG@levant] , has won/VBN the [Golden Pen "
         "Award|MISC] .", [("nadia", "Work_For", "levant")]),
        ("[Haddad|PER@nadia] was honoured for a series of articles about water shortages in [Amman|LOC@amman] , where "
         "{she@nadia} lives .", [("nadia", "Live_In", "amman")]),
        ("[Levant Daily|ORG@levant] said {it@levant} was proud of {{its@levant} reporter@nadia} .", []),
    ]),
    ("test", [
        ("Floods have forced {2,000 people@people} from {their@people} homes in [Assam|LOC@assam] , officials said "
         "on Thursday .", []),
        ("[Assam|LOC@assam] is a state in north-east [India|LOC@india] .", [("assam", "Located_In", "india")]),
        ("[Red Cross|ORG@redcross] worker [Ravi Menon|PER@ravi] said {his@ravi} team was bringing food and clean "
         "water .", [("ravi", "Work_For", "redcross")]),
    ]),
    ("test", [
        ("[Lucas Moreau|PER@lucas] , a cyclist from [Lyon|LOC@lyon] , won the [Alpine Classic|MISC] on Sunday .",
         [("lucas", "Live_In", "lyon")]),
        ("[Moreau|PER@lucas] rides for [Team Azur|ORG@azur] , which signed {him@lucas} last winter .",
         [("lucas", "Work_For", "azur")]),
        ("{He@lucas} dedicated {his@lucas} victory to {his@lucas} late father .", []),
    ]),
]

# Part-of-speech tags (Penn Treebank) of every word outside names, one reading per word; names are NNP (see
# pos_tag). A token written ``word/TAG`` in a sentence overrides the lexicon where the context needs another
# reading (``has won/VBN``, ``a pumpkin that/WDT weighs``).
_LEXICON_TABLE = {
    "DT": "the a an this every",
    "IN": "of in on at for from with by after about as near across between until over since within than that "
          "before",
    "CC": "and",
    "PRP": "she he it they him them",
    "PRP$": "her his its their",
    "WP": "who",
    "WDT": "which",
    "WRB": "where",
    "MD": "would will could",
    "TO": "to",
    "RB": "previously still never twice now only not so",
    "RP": "off out up down",
    "CD": "one two three ten million",
    "JJ": "new chief right several electric former final second local clean first small southern north-east "
          "heavy next last own late single national high proud",
    "JJR": "cheaper smaller older more lower",
    "JJS": "largest best highest most fifth",
    "VB": "open employ see build lose sell hire reopen fight meet name buy run stay show double step close carry "
          "create play lead start be",
    "VBD": "said told had fell cut surprised closed was were won crossed promised worked ran broke arrested "
           "welcomed resigned accepted bought started called wrote tested grew saved hoped spent chose opened "
           "taught thanked made beat left played recorded returned gave blamed dedicated signed expected scored "
           "offered reported joined supported",
    "VBZ": "is has expects runs builds employs lives flies plays belongs lies cooks teaches replaces rides weighs "
           "goes leads hopes plans opens",
    "VBP": "have change measure",
    "VBN": "based written published awarded forced criticised honoured named grown moved become been set "
           "designed found held sent raised mapped hurt seen agreed lived visited waited",
    "VBG": "looking bringing falling drilling holding",
    "NN": "executive laboratory site year building fisherman finish line city port mayor rower parade percent "
          "company decision forecast head safety aviation regulator rain county town bakery river shop water "
          "week documentary director ticket decade van plant plan leader chess player coach round team outbreak "
          "cholera month finance minister contract firm resignation regret shipping cargo yard grain founder "
          "business barge teacher novel grandmother book train work start-up sea ice engineer robbery jewellery "
          "radio season club factory spring blow drama actress role husband crew film panel fire museum frog "
          "species coin valley forest deal lender chairman board offer runner record chef restaurant opening "
          "night size victory father winter cyclist farmer pumpkin secret patience lot headquarters reporter "
          "series state worker food capital rugby researcher gold taxi driver bag owner tourist reward pianist "
          "woman scientist politician manager striker boat flooding council festival mother 19-year-old humpback solar",
    "NNS": "reporters years people cities roads hours sales miners members paintings cases men investors analysts "
           "sensors engineers goals jobs workers dishes critics euros pounds minutes firms ships buses drivers "
           "months summers songs whales phones unions dollars kilograms articles shortages homes officials floods "
           "firefighters rooftops players shares rents talks Police",
    "NNP": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday March May June April October Union Prime "
           "Minister Founder",
}
LEXICON: dict[str, str] = {}
for _tag, _words in _LEXICON_TABLE.items():
    for _word in _words.split():
        if _word in LEXICON:
            raise ValueError(f"{_word!r} is in the lexicon twice ({LEXICON[_word]}, {_tag})")
        LEXICON[_word] = _tag
PUNCTUATION = {",": ",", ".": ".", "'s": "POS"}
NAME_FUNCTION_WORDS = {"of": "IN", "and": "CC", "de": "NNP", "the": "DT"}
ADJECTIVAL_MISC = {"European", "Canadian", "German", "Korean", "Danish", "Egyptian", "Polish", "Spanish",
                   "Bulgarian"}

_CLOSER = re.compile(r"(\|(?P<type>[A-Z]+)(?:@(?P<key>\w+))?\]|@(?P<mkey>\w+)\})$")


@dataclass
class Mention:
    start: int  # sentence-level, end-exclusive
    end: int
    key: str
    label: str | None  # entity type for names, None for nominal / pronominal mentions


@dataclass
class Sentence:
    tokens: list[str] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)
    pos: dict[int, str] = field(default_factory=dict)  # POS overrides written word/TAG


def parse_sentence(text: str) -> Sentence:
    """Parse the inline annotation of one pre-tokenized sentence."""
    sentence = Sentence()
    stack: list[tuple[str, int]] = []
    for raw in text.split():
        opens = []
        while len(raw) > 1 and raw[0] in "[{":
            opens.append(raw[0])
            raw = raw[1:]
        closes = []
        while (match := _CLOSER.search(raw)) and match.start() > 0:
            closes.append(match)
            raw = raw[: match.start()]
        override = re.fullmatch(r"(.+)/([A-Z$]+)", raw)
        if override:
            raw = override.group(1)
        if any(c in raw for c in "[]{}|@/"):
            raise ValueError(f"stray markup in token {raw!r} of {text!r}")
        index = len(sentence.tokens)
        sentence.tokens.append(raw)
        if override:
            sentence.pos[index] = override.group(2)
        stack.extend((bracket, index) for bracket in opens)
        for match in reversed(closes):  # the innermost mention is the leftmost closer
            if not stack:
                raise ValueError(f"unbalanced markup in {text!r}")
            bracket, start = stack.pop()
            words = " ".join(sentence.tokens[start : index + 1])
            if match.group("type"):
                if bracket != "[" or match.group("type") not in ENTITY_TYPES:
                    raise ValueError(f"bad name markup {match.group(0)!r} in {text!r}")
                sentence.mentions.append(Mention(start, index + 1, match.group("key") or words, match.group("type")))
            else:
                if bracket != "{":
                    raise ValueError(f"bad mention markup {match.group(0)!r} in {text!r}")
                sentence.mentions.append(Mention(start, index + 1, match.group("mkey"), None))
    if stack:
        raise ValueError(f"unclosed markup in {text!r}")
    sentence.mentions.sort(key=lambda m: (m.start, -m.end))
    return sentence


def pos_tag(token: str, in_name: str | None) -> str:
    if token in PUNCTUATION:
        return PUNCTUATION[token]
    if re.fullmatch(r"\d[\d,.\-]*", token):
        return "CD"
    if in_name is not None:
        if token in NAME_FUNCTION_WORDS:
            return NAME_FUNCTION_WORDS[token]
        return "JJ" if in_name == "MISC" and token in ADJECTIVAL_MISC else "NNP"
    for candidate in (token, token.lower()):
        if candidate in LEXICON:
            return LEXICON[candidate]
    raise KeyError(f"no part-of-speech tag for {token!r}: add it to LEXICON")


def chunk_tags(tokens: list[str], pos: list[str]) -> list[str]:
    """Shallow chunks (NP, VP, PP, SBAR, ADVP, ADJP, PRT) from POS tags by simple rules, IOB1 like CoNLL-2003:
    ``B-`` only where a chunk follows one of the same type."""
    kinds: list[str | None] = []
    for i, tag in enumerate(pos):
        following = pos[i + 1] if i + 1 < len(pos) else ""
        if tag in (",", ".", "CC"):
            kinds.append(None)
        elif tag in ("MD", "VB", "VBD", "VBZ", "VBP", "VBN", "VBG") or (tag == "TO" and following == "VB"):
            kinds.append("VP")
        elif tag == "RB":
            kinds.append("VP" if following.startswith("VB") and i and kinds[-1] == "VP" else "ADVP")
        elif tag == "RP":
            kinds.append("PRT")
        elif tag == "IN" and tokens[i] == "that":  # a complementizer (relative "that" is written that/WDT)
            kinds.append("SBAR")
        elif tag in ("IN", "TO"):
            kinds.append("PP")
        elif tag == "WRB":
            kinds.append("ADVP")
        elif tag.startswith("JJ") and not (following.startswith("NN") or following.startswith("JJ") or following == "CD"):
            kinds.append("ADJP")
        else:  # DT, PRP, PRP$, WP, WDT, CD, NN*, POS, JJ before a noun
            kinds.append("NP")
    tags: list[str] = []
    for i, kind in enumerate(kinds):
        if kind is None:
            tags.append("O")
            continue
        previous = kinds[i - 1] if i else None
        new_np = kind == "NP" and (pos[i] in ("DT", "PRP", "WP", "WDT", "POS")
                                   or (pos[i] == "PRP$" and pos[i - 1] != "POS"))
        if previous == kind and (new_np or kind in ("PP", "SBAR", "PRT")):
            tags.append(f"B-{kind}")
        else:
            tags.append(f"I-{kind}")
    return tags


def build_document(doc_key: str, spec: list[tuple[str, list[tuple[str, str, str]]]]) -> tuple[dict, list[str]]:
    """One document as a DyGIE record and as CoNLL lines."""
    record = {"doc_key": doc_key, "sentences": [], "ner": [], "relations": [], "clusters": []}
    conll: list[str] = []
    chains: dict[str, list[tuple[int, int]]] = {}
    key_types: dict[str, str] = {}
    offset = 0
    for text, relations in spec:
        sentence = parse_sentence(text)
        names = [m for m in sentence.mentions if m.label]
        record["sentences"].append(sentence.tokens)
        record["ner"].append([[offset + m.start, offset + m.end - 1, m.label] for m in names])
        for mention in sentence.mentions:
            if mention.label:
                if key_types.setdefault(mention.key, mention.label) != mention.label:
                    raise ValueError(f"{doc_key}: key {mention.key!r} has two types")
            chains.setdefault(mention.key, []).append((offset + mention.start, offset + mention.end - 1))
        sentence_relations = []
        for head_key, label, tail_key in relations:
            arguments = []
            for key in (head_key, tail_key):
                found = [m for m in names if m.key == key]
                if len(found) != 1:
                    raise ValueError(f"{doc_key}: relation {label} needs one name {key!r} in {text!r}, found {len(found)}")
                arguments.append(found[0])
            if (arguments[0].label, arguments[1].label) != RELATION_SIGNATURES[label]:
                raise ValueError(f"{doc_key}: {label} between {arguments[0].label} and {arguments[1].label}")
            head, tail = arguments
            sentence_relations.append([offset + head.start, offset + head.end - 1,
                                       offset + tail.start, offset + tail.end - 1, label])
        record["relations"].append(sorted(sentence_relations))
        name_at: dict[int, str] = {}
        for name in names:
            for i in range(name.start, name.end):
                name_at[i] = name.label
        pos = [sentence.pos.get(i) or pos_tag(token, name_at.get(i)) for i, token in enumerate(sentence.tokens)]
        ner_tags = spans_to_tags([Span(m.start, m.end, m.label) for m in names], len(sentence.tokens), "iob1")
        for token, p, c, n in zip(sentence.tokens, pos, chunk_tags(sentence.tokens, pos), ner_tags):
            conll.append(f"{token} {p} {c} {n}")
        conll.append("")
        offset += len(sentence.tokens)
    record["clusters"] = sorted([sorted(set(m)) for m in chains.values() if len(set(m)) > 1])
    record["clusters"] = [[list(m) for m in cluster] for cluster in record["clusters"]]
    return record, conll


def build() -> dict[str, str]:
    """File name -> content for every file of the sample corpus."""
    files: dict[str, str] = {}
    counters: dict[str, int] = {}
    by_split: dict[str, tuple[list[str], list[str]]] = {}
    for split, spec in DOCUMENTS:
        counters[split] = counters.get(split, 0) + 1
        record, conll = build_document(f"sample-{split}-{counters[split]:02d}", spec)
        jsonl, conll_lines = by_split.setdefault(split, ([], []))
        jsonl.append(json.dumps(record, ensure_ascii=False))
        conll_lines.extend(["-DOCSTART- -X- O O", ""] + conll)
    for split, (jsonl, conll_lines) in by_split.items():
        files[f"sample.{split}.jsonl"] = "\n".join(jsonl) + "\n"
        files[f"sample.{split}.conll"] = "\n".join(conll_lines)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT})")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out instead of writing")
    args = parser.parse_args(argv)
    files = build()
    if args.check:
        stale = [name for name, text in files.items()
                 if not (args.out / name).exists() or (args.out / name).read_text(encoding="utf-8") != text]
        for name in stale:
            print(f"out of date: {args.out / name}")
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(files.items()):
        (args.out / name).write_text(text, encoding="utf-8")
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
