#!/usr/bin/env python3
"""An independent implementation of Weir's `nexmark` source and of the Nexmark queries in
examples/nexmark/, for checking Weir's output (tests/nexmark/nexmark_test.py).

It follows the model in docs/nexmark.md (Beam's and Flink's Nexmark generator, with its random
draws from java.util.Random's published algorithm, seeded per event) written from that
description, not from Weir's C++ code, and computes each query the way Flink's Nexmark SQL
(nexmark/nexmark, queries/qN.sql) defines it, with the differences docs/nexmark.md lists.

usage: reference.py QUERY_YAML [--total N]   prints the query's rows as JSON lines
"""
import argparse
import calendar
import datetime
import json
import math
import os
import re
import sys

import yaml

MASK48 = (1 << 48) - 1
MASK64 = (1 << 64) - 1
MULT = 0x5DEECE66D
SEED_STEP = 0x9E3779B97F4A7C15

PERSON, AUCTION, BID = 0, 1, 2
DENOM = 50  # 1 person, 3 auctions, 46 bids
FIRST_PERSON_ID = 1000
FIRST_AUCTION_ID = 1000
FIRST_CATEGORY_ID = 10
HOT = 100
ID_LEAD = 10

STATES = "AZ,CA,ID,OR,WA,WY".split(",")
CITIES = "Phoenix,Los Angeles,San Francisco,Boise,Portland,Bend,Redmond,Seattle,Kent,Cheyenne".split(",")
FIRST_NAMES = "Peter,Paul,Luke,John,Saul,Vicky,Kate,Julie,Sarah,Deiter,Walter".split(",")
LAST_NAMES = "Shultz,Abrams,Spencer,White,Bartels,Walton,Smith,Jones,Noris".split(",")
HOT_CHANNELS = ["Google", "Facebook", "Baidu", "Apple"]
CHANNELS = 10000

DEFAULTS = {
    "seed": 0, "events_per_second": 10000, "base_time": "2024-01-01 00:00:00",
    "avg_person_bytes": 200, "avg_auction_bytes": 500, "avg_bid_bytes": 100,
    "hot_auction_ratio": 2, "hot_sellers_ratio": 4, "hot_bidders_ratio": 4,
    "num_in_flight_auctions": 100, "num_active_people": 1000,
}


class JavaRandom:
    """java.util.Random: a 48-bit linear congruential generator."""
    __slots__ = ("s",)

    def __init__(self, seed):
        self.s = (seed ^ MULT) & MASK48

    def next(self, bits):
        self.s = (self.s * MULT + 0xB) & MASK48
        r = self.s >> (48 - bits)
        if bits == 32 and r >= 1 << 31:
            r -= 1 << 32
        return r

    def next_int(self, bound=None):
        if bound is None:
            return self.next(32)
        if bound & -bound == bound:
            return (bound * self.next(31)) >> 31
        while True:
            bits = self.next(31)
            val = bits % bound
            if bits - val + bound - 1 < 1 << 31:  # Java's int overflow check
                return val

    def next_long(self):
        v = ((self.next(32) << 32) + self.next(32)) & MASK64
        return v - (1 << 64) if v >= 1 << 63 else v

    def next_double(self):
        return ((self.next(26) << 27) + self.next(27)) * 2.0 ** -53


def java_divmod(a, b):
    """Java's int / and % (truncating toward zero)."""
    q = abs(a) // abs(b)
    if (a < 0) != (b < 0):
        q = -q
    return q, a - q * b


def next_long_below(rnd, n):
    if n < 2147483647:
        return rnd.next_int(n)
    return abs(java_divmod(rnd.next_long(), n)[1])


def next_string(rnd, max_len, special=" "):
    n = 3 + rnd.next_int(max_len - 3)
    out = []
    for _ in range(n):
        out.append(special if rnd.next_int(13) == 0 else chr(97 + rnd.next_int(26)))
    s = "".join(out)
    return s.strip(" ") if special == " " else s


def exact_string(rnd, length):
    """Six letters per 32-bit draw r: 'a' + r % 26, r /= 26 with Java's truncating division, so a
    negative draw gives letters below 'a'."""
    out = []
    while length > 0:
        r = rnd.next_int()
        a, base = (r, 97) if r >= 0 else (-r, -97)
        for _ in range(min(6, length)):
            a, m = divmod(a, 26)
            out.append(LETTERS[base + m] if base > 0 else LETTERS_NEG[m])
        length -= 6
    return "".join(out)


LETTERS = {97 + m: chr(97 + m) for m in range(26)}
LETTERS_NEG = [chr(97 - m) for m in range(26)]


def extra(rnd, current, average):
    if current > average:
        return ""
    average -= current
    delta = math.floor(average * 0.2 + 0.5)
    size = average - delta + (0 if delta == 0 else rnd.next_int(2 * delta))
    return exact_string(rnd, size)


def next_price(rnd):
    return math.floor(math.pow(10.0, rnd.next_double() * 6.0) * 100.0 + 0.5)


def base_url(rnd):
    return ("https://www.nexmark.com/" + "".join(next_string(rnd, 5, "_") + "/" for _ in range(3))
            + "item.htm?query=1")


def reverse32(x):
    return int(format(x & 0xFFFFFFFF, "032b")[::-1], 2)


def channel_url(k):
    rnd = JavaRandom(k)
    url = base_url(rnd)
    if rnd.next_int(10) > 0:
        r = reverse32(k)
        if r >= 1 << 31:
            r -= 1 << 32
        url += "&channel_id=" + str(abs(r))
    return url


HOT_URLS = [base_url(JavaRandom(CHANNELS + i)) for i in range(4)]


def kind_of(n):
    rem = n % DENOM
    return PERSON if rem < 1 else AUCTION if rem < 4 else BID


def last_person(n):
    epoch, off = divmod(n, DENOM)
    return epoch + (0 if off >= 1 else off)


def last_auction(n):
    epoch, off = divmod(n, DENOM)
    if off < 1:
        epoch, off = epoch - 1, 2
    elif off >= 4:
        off = 2
    else:
        off -= 1
    return epoch * 3 + off


class Generator:
    def __init__(self, config):
        c = dict(DEFAULTS)
        c.update({k: v for k, v in (config or {}).items() if k in DEFAULTS})
        self.c = c
        self.rate = int(c["events_per_second"])
        self.base = parse_time(c["base_time"])
        self.seed = int(c["seed"])

    def ts(self, n):
        return self.base + (n // self.rate) * 1000 + (n % self.rate) * 1000 // self.rate

    def next_person_id(self, n, rnd):
        people = last_person(n) + 1
        active = min(people, self.c["num_active_people"])
        return people - active + next_long_below(rnd, active + ID_LEAD)

    def next_auction_id(self, n, rnd):
        hi = last_auction(n)
        lo = max(hi - self.c["num_in_flight_auctions"], 0)
        return lo + next_long_below(rnd, hi - lo + 1 + ID_LEAD)

    def event(self, n):
        """(kind, dict of the event's columns) of event n."""
        rnd = JavaRandom((n + self.seed * SEED_STEP) & MASK64)
        ts = self.ts(n)
        k = kind_of(n)
        c = self.c
        if k == PERSON:
            name = FIRST_NAMES[rnd.next_int(11)] + " " + LAST_NAMES[rnd.next_int(9)]
            email = next_string(rnd, 7) + "@" + next_string(rnd, 5) + ".com"
            card = " ".join("%04d" % rnd.next_int(10000) for _ in range(4))
            city = CITIES[rnd.next_int(10)]
            state = STATES[rnd.next_int(6)]
            size = 8 + len(name) + len(email) + len(card) + len(city) + len(state)
            return k, {"id": last_person(n) + FIRST_PERSON_ID, "name": name, "emailAddress": email,
                       "creditCard": card, "city": city, "state": state, "dateTime": ts,
                       "extra": extra(rnd, size, c["avg_person_bytes"])}
        if k == AUCTION:
            if rnd.next_int(c["hot_sellers_ratio"]) > 0:
                seller = (last_person(n) // HOT) * HOT
            else:
                seller = self.next_person_id(n, rnd)
            category = FIRST_CATEGORY_ID + rnd.next_int(5)
            initial = next_price(rnd)
            ahead = c["num_in_flight_auctions"] * DENOM // 3
            horizon = self.ts(n + ahead) - ts
            expires = ts + 1 + next_long_below(rnd, max(horizon * 2, 1))
            item = next_string(rnd, 20)
            desc = next_string(rnd, 100)
            reserve = initial + next_price(rnd)
            size = 8 + len(item) + len(desc) + 40
            return k, {"id": last_auction(n) + FIRST_AUCTION_ID, "itemName": item,
                       "description": desc, "initialBid": initial, "reserve": reserve,
                       "dateTime": ts, "expires": expires, "seller": seller + FIRST_PERSON_ID,
                       "category": category, "extra": extra(rnd, size, c["avg_auction_bytes"])}
        if rnd.next_int(c["hot_auction_ratio"]) > 0:
            auction = (last_auction(n) // HOT) * HOT
        else:
            auction = self.next_auction_id(n, rnd)
        if rnd.next_int(c["hot_bidders_ratio"]) > 0:
            bidder = (last_person(n) // HOT) * HOT + 1
        else:
            bidder = self.next_person_id(n, rnd)
        price = next_price(rnd)
        pad = extra(rnd, 32, c["avg_bid_bytes"])
        if rnd.next_int(100) > 0:
            i = rnd.next_int(4)
            channel, url = HOT_CHANNELS[i], HOT_URLS[i]
        else:
            ch = rnd.next_int(CHANNELS)
            channel, url = f"channel-{ch}", channel_url(ch)
        return k, {"auction": auction + FIRST_AUCTION_ID, "bidder": bidder + FIRST_PERSON_ID,
                   "price": price, "channel": channel, "url": url, "dateTime": ts, "extra": pad}

    def bids(self, total):
        for n in range(total):
            if kind_of(n) == BID:
                yield self.event(n)[1]


def parse_time(text):
    d = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return calendar.timegm(d.utctimetuple()) * 1000 + d.microsecond // 1000


def fmt_time(ms, pattern="%Y-%m-%d %H:%M:%S.%f"):
    d = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return d.strftime(pattern.replace("%f", "%03d" % (ms % 1000)))


def hour(ms):
    return (ms // 3600000) % 24


# ---------------------------------------------------------------- queries (Flink's SQL)

def q0(bids):
    for b in bids:
        yield dict(b)


def q1(bids):
    for b in bids:
        yield {"auction": b["auction"], "bidder": b["bidder"], "price": 0.908 * b["price"],
               "dateTime": b["dateTime"], "extra": b["extra"]}


def q2(bids):
    for b in bids:
        if b["auction"] % 123 == 0:
            yield {"auction": b["auction"], "price": b["price"]}


# q13's side table, as Flink's nexmark generates side_input.txt: key i, value the text of i.
SIDE_INPUT_ROWS = 10000


def q13(bids):
    side = {i: str(i) for i in range(SIDE_INPUT_ROWS)}
    for b in bids:
        value = side.get(b["auction"] % SIDE_INPUT_ROWS)
        if value is not None:
            yield {"auction": b["auction"], "bidder": b["bidder"], "price": b["price"],
                   "dateTime": b["dateTime"], "value": value}


def q10(bids):
    for b in bids:
        yield {"auction": b["auction"], "bidder": b["bidder"], "price": b["price"],
               "dateTime": b["dateTime"], "extra": b["extra"],
               "dt": fmt_time(b["dateTime"], "%Y-%m-%d"), "hm": fmt_time(b["dateTime"], "%H:%M")}


def q14(bids):
    for b in bids:
        price = 0.908 * b["price"]
        if not (price > 1000000 and price < 50000000):
            continue
        h = hour(b["dateTime"])
        kind = "dayTime" if 8 <= h <= 18 else "nightTime" if h <= 6 or h >= 20 else "otherTime"
        yield {"auction": b["auction"], "bidder": b["bidder"], "price": price,
               "bidTimeType": kind, "dateTime": b["dateTime"], "extra": b["extra"],
               "c_counts": b["extra"].count("c")}


def q17(bids):
    groups = {}
    for b in bids:
        day = b["dateTime"] // 86400000
        g = groups.setdefault((b["auction"], day), [0, 0, 0, 0, None, None, 0])
        p = b["price"]
        g[0] += 1
        g[1] += p < 10000
        g[2] += 10000 <= p < 1000000
        g[3] += p >= 1000000
        g[4] = p if g[4] is None else min(g[4], p)
        g[5] = p if g[5] is None else max(g[5], p)
        g[6] += p
    for (auction, day), g in groups.items():
        yield {"auction": auction, "day": fmt_time(day * 86400000, "%Y-%m-%d"),
               "total_bids": g[0], "rank1_bids": g[1], "rank2_bids": g[2], "rank3_bids": g[3],
               "min_price": g[4], "max_price": g[5], "avg_price": g[6] / g[0], "sum_price": g[6]}


def q11(bids):
    """Per bidder, sessions of bids at most 10 s apart (Flink's SESSION windows: a bid at t
    makes [t, t + 10 s); windows that overlap or touch merge)."""
    gap = 10000
    times = {}
    for b in bids:
        times.setdefault(b["bidder"], []).append(b["dateTime"])
    for bidder, ts in times.items():
        ts.sort()
        start, end, n = ts[0], ts[0] + gap, 0
        for t in ts:
            if t > end:
                yield {"bidder": bidder, "bid_count": n, "starttime": fmt_time(start),
                       "endtime": fmt_time(end)}
                start, end, n = t, t + gap, 0
            end = max(end, t + gap)
            n += 1
        yield {"bidder": bidder, "bid_count": n, "starttime": fmt_time(start),
               "endtime": fmt_time(end)}


def q12(bids):
    """Processing-time windows: which window a bid lands in depends on the clock; only the
    total of bid_count is fixed. One row holding the number of bids."""
    yield {"bids": sum(1 for _ in bids)}


def q18(bids):
    """The last bid (latest dateTime; of equal times the later event) per bidder and auction
    within each hour of event time (dedup keep: last, ttl: 1h)."""
    last = {}
    for b in bids:
        k = (b["bidder"], b["auction"], b["dateTime"] // 3600000)
        if k not in last or b["dateTime"] >= last[k]["dateTime"]:
            last[k] = b
    for b in last.values():
        yield dict(b)


def q19(bids):
    """Per auction and 10 s tumbling window, the 10 highest prices; equal prices ordered by the
    other fields ascending, in the row's field order (top_n's tie-break)."""
    order = ["auction", "bidder", "price", "channel", "url", "dateTime", "extra", "window_end"]
    parts = {}
    for b in bids:
        r = dict(b)
        r["window_end"] = b["dateTime"] - b["dateTime"] % 10000 + 10000
        parts.setdefault((r["auction"], r["window_end"]), []).append(r)
    for rows in parts.values():
        rows.sort(key=lambda r: (-r["price"], [r[f] for f in order]))
        for i, r in enumerate(rows[:10]):
            r["rank_number"] = i + 1
            r["window_end"] = fmt_time(r["window_end"])
            yield r


def q5(bids):
    """Per sliding window (10 s every 2 s), every auction whose bid count is the window's
    maximum."""
    counts = {}
    for b in bids:
        t = b["dateTime"]
        start = t - t % 2000
        while start > t - 10000:
            w = counts.setdefault(start, {})
            w[b["auction"]] = w.get(b["auction"], 0) + 1
            start -= 2000
    for start, w in counts.items():
        top = max(w.values())
        for auction, n in w.items():
            if n == top:
                yield {"auction": auction, "num": n, "starttime": fmt_time(start),
                       "endtime": fmt_time(start + 10000)}


RANKS = (lambda p: p < 10000, lambda p: 10000 <= p < 1000000, lambda p: p >= 1000000)


def bid_statistics(bids, group):
    """q15's figures per group(bid): counts of bids, distinct bidders and auctions, overall
    and per price rank."""
    stats = {}
    for b in bids:
        g = stats.setdefault(group(b), {"bids": [0] * 4, "bidders": [set() for _ in range(4)],
                                         "auctions": [set() for _ in range(4)], "minute": ""})
        g["minute"] = max(g["minute"], fmt_time(b["dateTime"], "%H:%M"))
        for i, in_rank in enumerate((lambda p: True,) + RANKS):
            if in_rank(b["price"]):
                g["bids"][i] += 1
                g["bidders"][i].add(b["bidder"])
                g["auctions"][i].add(b["auction"])
    for key, g in stats.items():
        row = {}
        for what in ("bids", "bidders", "auctions"):
            for i, name in enumerate(("total", "rank1", "rank2", "rank3")):
                v = g[what][i]
                row[f"{name}_{what}"] = v if isinstance(v, int) else len(v)
        yield key, g["minute"], row


def day_of(b):
    return fmt_time(b["dateTime"], "%Y-%m-%d")


def q15(bids):
    for day, _, row in bid_statistics(bids, day_of):
        yield {"day": day, **row}


def q16(bids):
    for (channel, day), minute, row in bid_statistics(bids, lambda b: (b["channel"], day_of(b))):
        yield {"channel": channel, "day": day, "minute": minute, **row}


CHANNEL_ID = re.compile(r"(&|^)channel_id=([^&]*)")


def q21(bids):
    ids = {"apple": "0", "google": "1", "facebook": "2", "baidu": "3"}
    for b in bids:
        m = CHANNEL_ID.search(b["url"])
        ch = b["channel"].lower()
        if m is None and ch not in ids:
            continue
        yield {"auction": b["auction"], "bidder": b["bidder"], "price": b["price"],
               "channel": b["channel"], "channel_id": ids.get(ch, m.group(2) if m else None)}


def q22(bids):
    for b in bids:
        parts = b["url"].split("/")
        yield {"auction": b["auction"], "bidder": b["bidder"], "price": b["price"],
               "channel": b["channel"], "dir1": parts[3] if len(parts) > 3 else None,
               "dir2": parts[4] if len(parts) > 4 else None,
               "dir3": parts[5] if len(parts) > 5 else None}


# ---------------------------------------------------------------- joins (over all events)

def q3(events):
    people = {}
    auctions = []
    for kind, e in events:
        if kind == PERSON and e["state"] in ("OR", "ID", "CA"):
            people[e["id"]] = e
        elif kind == AUCTION and e["category"] == 10:
            auctions.append(e)
    for a in auctions:
        p = people.get(a["seller"])
        if p is not None:
            yield {"name": p["name"], "city": p["city"], "state": p["state"], "id": a["id"]}


def q7(events):
    """Bids whose price is the maximum of a 10 s window whose rowtime (end - 1) r has
    r - 10 s <= dateTime <= r (so also the last millisecond of the window before)."""
    size = 10000
    bids = [e for kind, e in events if kind == BID]
    top = {}
    for b in bids:
        w = b["dateTime"] // size
        top[w] = max(top.get(w, b["price"]), b["price"])
    for b in bids:
        for w in {b["dateTime"] // size, (b["dateTime"] + 1) // size}:
            r = w * size + size - 1
            if w in top and b["price"] == top[w] and r - size <= b["dateTime"] <= r:
                yield {"auction": b["auction"], "price": b["price"], "bidder": b["bidder"],
                       "dateTime": b["dateTime"], "extra": b["extra"]}


def q8(events):
    """People whose id sold an auction in the 10 s tumbling window they registered in."""
    size = 10000
    people, sold = [], set()
    for kind, e in events:
        if kind == PERSON:
            people.append(e)
        elif kind == AUCTION:
            sold.add((e["seller"], e["dateTime"] // size))
    for p in people:
        w = p["dateTime"] // size
        if (p["id"], w) in sold:
            yield {"id": p["id"], "name": p["name"], "starttime": fmt_time(w * size)}


def q20(events):
    auctions, bids = {}, []
    for kind, e in events:
        if kind == AUCTION and e["category"] == 10:
            auctions[e["id"]] = e
        elif kind == BID:
            bids.append(e)
    for b in bids:
        a = auctions.get(b["auction"])
        if a is None:
            continue
        yield {"auction": b["auction"], "bidder": b["bidder"], "price": b["price"],
               "channel": b["channel"], "url": b["url"], "bid_dateTime": fmt_time(b["dateTime"]),
               "bid_extra": b["extra"], "itemName": a["itemName"],
               "description": a["description"], "initialBid": a["initialBid"],
               "reserve": a["reserve"], "auction_dateTime": fmt_time(a["dateTime"]),
               "expires": fmt_time(a["expires"]), "seller": a["seller"],
               "category": a["category"], "auction_extra": a["extra"]}


def closed_auctions(events):
    """Per auction, its bids with A.dateTime <= B.dateTime <= A.expires: (auction, [bids])."""
    auctions, bids = {}, []
    for kind, e in events:
        if kind == AUCTION:
            auctions[e["id"]] = e
        elif kind == BID:
            bids.append(e)
    matched = {}
    for b in bids:
        a = auctions.get(b["auction"])
        if a is not None and a["dateTime"] <= b["dateTime"] <= a["expires"]:
            matched.setdefault(a["id"], []).append(b)
    return [(auctions[i], bs) for i, bs in matched.items()]


def q9(events):
    """Each auction's winning bid (as Flink's q9.sql: any bid in its lifetime): the highest
    price, then the earliest; bids equal in both by their other fields (bidder, channel, url,
    extra)."""
    for a, bids in closed_auctions(events):
        w = min(bids, key=lambda b: (-b["price"], b["dateTime"], b["bidder"], b["channel"],
                                      b["url"], b["extra"]))
        yield {"id": a["id"], "itemName": a["itemName"], "description": a["description"],
               "initialBid": a["initialBid"], "reserve": a["reserve"], "dateTime": a["dateTime"],
               "expires": fmt_time(a["expires"]), "seller": a["seller"],
               "category": a["category"], "extra": a["extra"], "auction": w["auction"],
               "bidder": w["bidder"], "price": w["price"],
               "bid_dateTime": fmt_time(w["dateTime"]), "bid_extra": w["extra"]}


def q4(events):
    """The final average of the closing (maximum) prices of each category's auctions, and how
    many auctions it averages (the last of Weir's updates per category)."""
    finals = {}
    for a, bids in closed_auctions(events):
        finals.setdefault(a["category"], []).append(max(b["price"] for b in bids))
    for category, prices in finals.items():
        yield {"category": category, "final": sum(prices) / len(prices), "auctions": len(prices)}


QUERIES = {"q0": q0, "q1": q1, "q2": q2, "q10": q10, "q13": q13, "q11": q11, "q12": q12, "q14": q14,
           "q17": q17, "q21": q21, "q22": q22,
           "q5": q5, "q15": q15, "q16": q16, "q18": q18, "q19": q19}
# Queries over events of every kind, (kind, columns) in event order.
EVENT_QUERIES = {"q3": q3, "q4": q4, "q7": q7, "q8": q8, "q9": q9, "q20": q20}


def source_config(job):
    for v in job["vertices"]:
        if v["type"] == "nexmark":
            return v.get("config") or {}
    raise ValueError("the job has no nexmark source")


_bids_cache = {}


def bids_of(job, total):
    """The bids among the first `total` events of the job's nexmark source (the last few
    sources' bids are kept, since queries share them)."""
    key = (json.dumps({k: v for k, v in source_config(job).items() if k in DEFAULTS},
                      sort_keys=True), total)
    if key not in _bids_cache:
        if len(_bids_cache) >= 2:
            _bids_cache.pop(next(iter(_bids_cache)))
        _bids_cache[key] = list(Generator(source_config(job)).bids(total))
    return _bids_cache[key]


def expected(query, job, total):
    """The rows of `query` (a name in QUERIES or EVENT_QUERIES) over the first `total` events of the job's
    nexmark source, timestamps as Weir writes them."""
    out = []
    if query in EVENT_QUERIES:
        gen = Generator(source_config(job))
        rows = EVENT_QUERIES[query](gen.event(n) for n in range(total))
    else:
        rows = QUERIES[query](iter(bids_of(job, total)))
    for row in rows:
        for k in ("dateTime",):
            if k in row:
                row[k] = fmt_time(row[k])
        out.append(row)
    return out


SINKS = ("file", "committing_file")
REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def job_for(path, total, parallelism, out_dir=None):
    """The job of examples/nexmark/<query>.yaml as YAML text, for `total` events at
    `parallelism` (every vertex), its sink writing under `out_dir`, or a blackhole when
    `out_dir` is None."""
    with open(path) as f:
        job = yaml.safe_load(f)
    for v in job["vertices"]:
        v["parallelism"] = parallelism
        if v["type"] == "nexmark":
            v["config"]["total"] = total
        elif v["type"] == "lookup_join":
            # Side inputs are relative to the repository (the task managers' working directory
            # may be anything).
            v["config"]["path"] = os.path.join(REPO, v["config"]["path"])
        elif v["type"] in SINKS:
            if out_dir is None:
                v["type"], v["config"] = "blackhole", {}
            else:
                v["config"]["path"] = out_dir
    return yaml.safe_dump(job, sort_keys=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("job")
    ap.add_argument("--total", type=int)
    a = ap.parse_args()
    with open(a.job) as f:
        job = yaml.safe_load(f)
    query = a.job.rsplit("/", 1)[-1].split(".")[0]
    total = a.total if a.total is not None else source_config(job).get("total", 1000)
    for row in expected(query, job, total):
        sys.stdout.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
