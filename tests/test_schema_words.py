"""Schema problems in plain words: where (line, element path), what is wrong, what the schema
expects there; never the validator's class names (the Why of issue 16: an upload showed
``<class 'elementpath.datatypes.datetime.DateTime10'>`` and ``XsdElement(name='atom:link',
occurs=[2, None])``)."""

from __future__ import annotations

import espi

BAD = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <id>urn:uuid:1</id>
  <title>x</title>
  <updated>yesterday</updated>
  <entry>
    <id>urn:uuid:2</id>
    <title>t</title>
    <updated>2020-01-01T00:00:00Z</updated>
    <content><UsagePoint xmlns="http://naesb.org/espi"><ServiceCategory><kind>zero</kind></ServiceCategory><bogus/></UsagePoint></content>
  </entry>
  <entry>
    <id>urn:uuid:3</id>
    <title>t</title>
    <updated>2020-01-01T00:00:00Z</updated>
    <content><ReadingType xmlns="http://naesb.org/espi"><intervalLength>-5</intervalLength><currency>840</currency></ReadingType></content>
  </entry>
</feed>
"""


def test_schema_problems_say_what_was_expected_in_plain_words():
    problems = espi.validate(BAD)
    said = {(p.line, p.path): p.message for p in problems}
    assert (
        said[(5, "/feed/updated")]
        == "'yesterday' is not a date and time, like 2024-01-31T00:00:00Z"
    )
    kind = "/feed/entry[1]/content/espi:UsagePoint/espi:ServiceCategory/espi:kind"
    assert said[(10, kind)].startswith("'zero' is not a ServiceKind code (0, 1, 2")
    bogus = said[(10, "/feed/entry[1]/content/espi:UsagePoint")]
    assert bogus.startswith("<espi:bogus> is not allowed here as child 2 of <espi:UsagePoint>;")
    assert "ServiceCategory, status" in bogus  # what may come there, in order
    length = said[(16, "/feed/entry[2]/content/espi:ReadingType/espi:intervalLength")]
    assert length == "'-5' must be a whole number from 0 to 4,294,967,295"
    order = said[(16, "/feed/entry[2]/content/espi:ReadingType")]
    assert "<espi:currency> is not allowed here" in order and "currency, dataQualifier" in order
    for p in problems:
        assert (
            "<class" not in p.message and "Xsd" not in p.message and "elementpath" not in p.message
        )
