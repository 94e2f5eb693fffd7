#!/usr/bin/env python3
"""Writes the hostile-input corpus (run from this folder: python3 make.py). Each file
is one way real exports break; tests/hostile.rs holds the expected outcome of each.
Files that must be large or binary (a 10 MB field, gzip, Parquet) are made by the
test itself so they are not committed."""

HEADER = "user_id,event_time,event_type,session_id,item_id,category,query,amount,rating"


def good_rows(users=6, per_user=5, prefix="u"):
    rows = []
    for u in range(users):
        for i in range(per_user):
            kind = ["view", "search", "add_to_cart", "purchase", "rating"][(u + i) % 5]
            amount = f"{10 + u * 7 + i}.50" if kind == "purchase" else ""
            rating = str(1 + (u + i) % 5) if kind == "rating" else ""
            query = f"term{u}" if kind == "search" else ""
            category = ["books", "toys", "garden"][u % 3]
            rows.append(f"{prefix}{u},2026-03-{1 + i:02d} {8 + u:02d}:{i * 7:02d}:00,{kind},,,{category},{query},{amount},{rating}")
    return rows


def write(name, text, mode="w"):
    with open(name, "wb") as f:
        f.write(text if isinstance(text, bytes) else text.encode())


rows = good_rows()
body = "\n".join(rows) + "\n"
write("bom.csv", "\ufeff" + HEADER + "\n" + body)
mixed = HEADER + "\r\n" + "".join(r + ("\r\n" if i % 2 else "\n") for i, r in enumerate(rows))
write("crlf_mixed.csv", mixed)
write("quoted_multiline.csv", HEADER + "\n" + body
      + 'u1,2026-03-09 10:00:00,search,,,books,"two\nlines",,\n'
      + 'u2,2026-03-09 11:00:00,search,,,books,"say ""hi""",,\n')
write("nul_byte.csv", (HEADER + "\n" + body).encode() + b"u3,2026-03-09 10:00:00,view,,,bo\x00oks,,,\n")
write("invalid_utf8.csv", (HEADER + "\n" + body).encode() + b"u3,2026-03-09 10:00:00,view,,,caf\xe9,,,\n")
write("empty.csv", "")
write("header_only.csv", HEADER + "\n")
write("repeated_header.csv", HEADER + "\n" + "\n".join(rows[:15]) + "\n" + HEADER + "\n" + "\n".join(rows[15:]) + "\n")
write("ragged.csv", HEADER + "\n" + body
      + "u1,2026-03-09 10:00:00,view,,,books,,,,extra\n"
      + "u1,2026-03-09 10:00:00,view\n")
reordered = "event_type,category,user_id,note,event_time\n" + "".join(
    f"{r.split(',')[2]},{r.split(',')[5]},{r.split(',')[0]},free text,{r.split(',')[1]}\n" for r in rows)
write("reordered_columns.csv", reordered)
write("timestamps.csv", HEADER + "\n" + body
      + "u1,2026-03-10T10:00:00+02:00,view,,,books,,,\n"
      + "u1,2026-03-10T10:00:00Z,view,,,books,,,\n"
      + "u2,2026-03-29 02:30:00,view,,,toys,,,\n"
      + "u2,1900-01-01 00:00:00,view,,,toys,,,\n"
      + "u3,2200-01-01 00:00:00,view,,,garden,,,\n")
epoch = "user_id,event_time,event_type\n" + "".join(
    f"e{u},{1767225600 + u * 3600 + i * 86400},view\n" for u in range(6) for i in range(4))
write("epoch_seconds.csv", epoch)
write("epoch_millis_as_seconds.csv", "user_id,event_time,event_type\n" + "".join(
    f"e{u},{(1767225600 + u * 3600 + i * 86400) * 1000},view\n" for u in range(6) for i in range(4)))
write("amounts.csv", HEADER + "\n" + body
      + 'u1,2026-03-10 10:00:00,purchase,,,books,,"1,234.50",\n'
      + "u1,2026-03-10 11:00:00,purchase,,,books,,NaN,\n"
      + "u1,2026-03-10 12:00:00,purchase,,,books,,inf,\n"
      + "u2,2026-03-10 10:00:00,purchase,,,toys,,-0,\n"
      + "u2,2026-03-10 11:00:00,purchase,,,toys,,1e308,\n"
      + 'u3,2026-03-10 10:00:00,purchase,,,toys,,"1,234",\n')
write("user_ids.csv", HEADER + "\n" + body
      + ",2026-03-10 10:00:00,view,,,books,,,\n"
      + "x" * 10240 + ",2026-03-10 10:00:00,view,,,books,,,\n"
      + "007,2026-03-10 10:00:00,view,,,books,,,\n"
      + "007,2026-03-10 10:05:00,purchase,,,books,,5.00,\n")
write("one_user.csv", HEADER + "\n" + "\n".join(good_rows(users=1, per_user=8)) + "\n")
same = [f"s{u},2026-03-0{1 + i} 10:00:00,view,,,books,,," for u in range(8) for i in range(3)]
write("identical_users.csv", HEADER + "\n" + "\n".join(same) + "\n")
write("three_users.csv", HEADER + "\n" + "\n".join(good_rows(users=3, per_user=6)) + "\n")
