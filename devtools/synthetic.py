"""Synthetic inspection letters in the style of the real ones, with their expected parse.

Used by benchmarks (thousands of varied letters) and by tests that need letters whose correct
parse is known. Everything is deterministic from a seed:

    >>> s = generate_letter(7)
    >>> s.text            # the letter as a text file would hold it
    >>> s.expected        # what a correct parse yields (dates as YYYY-MM-DD)
    >>> s.to_bytes()      # in its own encoding (UTF-8, UTF-8 with BOM or cp1252) and line endings
    >>> render_pdf(s)     # the same letter as a PDF: letterhead, page header, "Page N of M"

`python -m devtools.synthetic OUT_DIR N [--seed S] [--pdf-share 0.2] [--expected]` writes a corpus.

The authorities are the 152 English children's services authorities of 2010, read from the
project's seed (dbt_project/seeds/local_authorities.csv: GSS code, name, dates in force) and
written the way the letters write them ("Dorset County Council", "London Borough of Camden",
"City of York Council"...): that style, and a place name where it differs, is all this module
keeps of its own.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import random
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from types import EllipsisType
from typing import Any

from ingest.letters.models import CopyRecipient, Finding, Letter
from ingest.settings import PROJECT_ROOT

# --- reference data ---------------------------------------------------------------------------
# The authorities come from the project's seed (gss_code, the register's name); this table
# holds only what the seed lacks: gss_code | the name as the letters write it | the place in
# "<place> Safeguarding Children Board", where that is not the register's name.
SEED = PROJECT_ROOT / "dbt_project" / "seeds" / "local_authorities.csv"
IN_FORCE_ON = dt.date(2010, 6, 1)  # the authorities the letters of 2009-2012 address
_LETTER_STYLE = """\
E06000001|Hartlepool Borough Council
E06000002|Middlesbrough Council
E06000003|Redcar and Cleveland Borough Council
E06000004|Stockton-on-Tees Borough Council
E06000005|Darlington Borough Council
E06000006|Halton Borough Council
E06000007|Warrington Borough Council
E06000008|Blackburn with Darwen Borough Council
E06000009|Blackpool Council
E06000010|Kingston upon Hull City Council|Hull
E06000011|East Riding of Yorkshire Council|East Riding
E06000012|North East Lincolnshire Council
E06000013|North Lincolnshire Council
E06000014|City of York Council
E06000015|Derby City Council
E06000016|Leicester City Council
E06000017|Rutland County Council
E06000018|Nottingham City Council
E06000019|Herefordshire Council|Herefordshire
E06000020|Telford and Wrekin Council
E06000021|Stoke-on-Trent City Council
E06000022|Bath and North East Somerset Council
E06000023|Bristol City Council|Bristol
E06000024|North Somerset Council
E06000025|South Gloucestershire Council
E06000026|Plymouth City Council
E06000027|Torbay Council
E06000028|Bournemouth Borough Council
E06000029|Borough of Poole
E06000030|Swindon Borough Council
E06000031|Peterborough City Council
E06000032|Luton Borough Council
E06000033|Southend-on-Sea Borough Council|Southend
E06000034|Thurrock Council
E06000035|Medway Council
E06000036|Bracknell Forest Council
E06000037|West Berkshire Council
E06000038|Reading Borough Council
E06000039|Slough Borough Council
E06000040|Royal Borough of Windsor and Maidenhead
E06000041|Wokingham Borough Council
E06000042|Milton Keynes Council
E06000043|Brighton and Hove City Council
E06000044|Portsmouth City Council
E06000045|Southampton City Council
E06000046|Isle of Wight Council
E06000047|Durham County Council|Durham
E06000048|Northumberland County Council
E06000049|Cheshire East Council
E06000050|Cheshire West and Chester Council
E06000051|Shropshire Council
E06000052|Cornwall Council
E06000053|Council of the Isles of Scilly
E06000054|Wiltshire Council
E06000055|Bedford Borough Council
E06000056|Central Bedfordshire Council
E08000001|Bolton Metropolitan Borough Council
E08000002|Bury Metropolitan Borough Council
E08000003|Manchester City Council
E08000004|Oldham Metropolitan Borough Council
E08000005|Rochdale Metropolitan Borough Council
E08000006|Salford City Council
E08000007|Stockport Metropolitan Borough Council
E08000008|Tameside Metropolitan Borough Council
E08000009|Trafford Metropolitan Borough Council
E08000010|Wigan Metropolitan Borough Council
E08000011|Knowsley Metropolitan Borough Council
E08000012|Liverpool City Council
E08000013|St Helens Metropolitan Borough Council|St Helens
E08000014|Sefton Metropolitan Borough Council
E08000015|Wirral Metropolitan Borough Council
E08000016|Barnsley Metropolitan Borough Council
E08000017|Doncaster Metropolitan Borough Council
E08000018|Rotherham Metropolitan Borough Council
E08000019|Sheffield City Council
E08000020|Gateshead Metropolitan Borough Council
E08000021|Newcastle City Council|Newcastle
E08000022|North Tyneside Council
E08000023|South Tyneside Council
E08000024|Sunderland City Council
E08000025|Birmingham City Council
E08000026|Coventry City Council
E08000027|Dudley Metropolitan Borough Council
E08000028|Sandwell Metropolitan Borough Council
E08000029|Solihull Metropolitan Borough Council
E08000030|Walsall Metropolitan Borough Council
E08000031|Wolverhampton City Council
E08000032|City of Bradford Metropolitan District Council
E08000033|Calderdale Metropolitan Borough Council
E08000034|Kirklees Council
E08000035|Leeds City Council
E08000036|Wakefield Metropolitan District Council
E09000001|City of London Corporation
E09000002|London Borough of Barking and Dagenham
E09000003|London Borough of Barnet
E09000004|London Borough of Bexley
E09000005|London Borough of Brent
E09000006|London Borough of Bromley
E09000007|London Borough of Camden
E09000008|London Borough of Croydon
E09000009|London Borough of Ealing
E09000010|London Borough of Enfield
E09000011|London Borough of Greenwich
E09000012|London Borough of Hackney
E09000013|London Borough of Hammersmith and Fulham
E09000014|London Borough of Haringey
E09000015|London Borough of Harrow
E09000016|London Borough of Havering
E09000017|London Borough of Hillingdon
E09000018|London Borough of Hounslow
E09000019|London Borough of Islington
E09000020|Royal Borough of Kensington and Chelsea
E09000021|Royal Borough of Kingston upon Thames
E09000022|London Borough of Lambeth
E09000023|London Borough of Lewisham
E09000024|London Borough of Merton
E09000025|London Borough of Newham
E09000026|London Borough of Redbridge
E09000027|London Borough of Richmond upon Thames
E09000028|London Borough of Southwark
E09000029|London Borough of Sutton
E09000030|London Borough of Tower Hamlets
E09000031|London Borough of Waltham Forest
E09000032|London Borough of Wandsworth
E09000033|Westminster City Council
E10000002|Buckinghamshire County Council
E10000003|Cambridgeshire County Council
E10000006|Cumbria County Council
E10000007|Derbyshire County Council
E10000008|Devon County Council
E10000009|Dorset County Council
E10000011|East Sussex County Council
E10000012|Essex County Council
E10000013|Gloucestershire County Council
E10000014|Hampshire County Council
E10000015|Hertfordshire County Council
E10000016|Kent County Council
E10000017|Lancashire County Council
E10000018|Leicestershire County Council
E10000019|Lincolnshire County Council
E10000020|Norfolk County Council
E10000021|Northamptonshire County Council
E10000023|North Yorkshire County Council
E10000024|Nottinghamshire County Council
E10000025|Oxfordshire County Council
E10000027|Somerset County Council
E10000028|Staffordshire County Council
E10000029|Suffolk County Council
E10000030|Surrey County Council
E10000031|Warwickshire County Council
E10000032|West Sussex County Council
E10000034|Worcestershire County Council
"""


@dataclass(frozen=True, slots=True)
class Authority:
    gss_code: str
    la_name: str  # as in the reference list
    letter_name: str  # as the letters write it
    place: str  # as in "<place> Safeguarding Children Board"


def _in_force(row: dict[str, str], day: dt.date) -> bool:
    starts, ends = row["valid_from"], row["valid_to"]
    started = not starts or dt.date.fromisoformat(starts) <= day
    return started and (not ends or day <= dt.date.fromisoformat(ends))


def load_authorities(seed: Path = SEED, on: dt.date = IN_FORCE_ON) -> tuple[Authority, ...]:
    """The seed's authorities in force on `on`, in GSS code order, with their letter style."""
    styles = {}
    for line in _LETTER_STYLE.splitlines():
        gss, letter_name, *place = line.split("|")
        styles[gss] = (letter_name, place[0] if place else None)
    out = []
    with seed.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if not _in_force(row, on):
                continue
            if row["gss_code"] not in styles:
                raise ValueError(f"{seed}: {row['gss_code']} {row['authority_name']} has no letter-style name"
                                 " in devtools/synthetic.py")
            letter_name, place = styles[row["gss_code"]]
            out.append(Authority(row["gss_code"], row["authority_name"], letter_name,
                                 place or row["authority_name"]))
    return tuple(sorted(out, key=lambda a: a.gss_code))


AUTHORITIES: tuple[Authority, ...] = load_authorities()

MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)

FIRST_NAMES = (
    "John", "Martin", "David", "Marie", "Susan", "Helen", "Peter", "Andrew", "Sarah", "Jane",
    "Richard", "Paul", "Karen", "Linda", "Stephen", "Gillian", "Michael", "Rachel", "Ian",
    "Alison", "Graham", "Nicola", "Christine", "Mark", "Julie", "Anne", "Robert", "Deborah",
    "Patricia", "Simon", "Elizabeth", "Kevin", "Joanne", "Brian", "Margaret", "Tony", "Pauline",
)
SURNAMES = (
    "Nash", "Davis", "Asher", "McGuinness", "Buckley", "Wyatt", "Sharratt", "Jenkins", "Stowe",
    "Coombs", "Hodgson", "Harris", "Lewis", "Walker", "Thompson", "Patel", "O'Connor", "Hughes",
    "Bennett", "Clarke", "Fletcher", "Graham", "Holloway", "Iqbal", "Kaur", "Lawson", "Morgan",
    "Newton", "Owens", "Pearson", "Quinn", "Roberts", "Shaw", "Turner", "Underwood", "Vaughan",
    "Whitfield", "Young", "Ahmed", "Brennan", "Chandler", "Doyle", "Ellison", "Fraser", "Gill",
)
FEMALE = {
    "Marie", "Susan", "Helen", "Sarah", "Jane", "Karen", "Linda", "Gillian", "Rachel", "Alison",
    "Nicola", "Christine", "Julie", "Anne", "Deborah", "Patricia", "Elizabeth", "Joanne",
    "Margaret", "Pauline",
}
INSPECTORS = (
    "Martin Davis", "David Asher", "Marie McGuinness", "Linda Steele", "Brenda McLaughlin",
    "Sheena Doyle", "Tom Anthony", "Peter McEntee", "Jan Edwards", "Carolyn Adcock",
    "Nick Stacey", "Lynn Radley", "Rosemary Chapman", "Alan Parkinson", "Marcie Taylor",
    "Mary Candlin", "John Salmon", "Patrick Leeson", "Suzy Lemmey", "Jon Bownes",
    "Kath Townsley", "Ian Young", "Anji Gates", "Margaret Burke",
)
DIRECTOR_TITLES = (
    "Director of Children's Services",
    "Director of Children's Services",
    "Corporate Director of Children's Services",
    "Executive Director of Children's Services",
    "Strategic Director for Children and Young People",
    "Director of Children, Schools and Families",
    "Deputy Chief Executive and Strategic Director for Children and Young People",
    "Interim Director of Children's Services",
)
BUILDINGS = ("County Hall", "Civic Centre", "Town Hall", "Council House", "Civic Offices", "Guildhall")
STREETS = ("Market Street", "Station Road", "Park Lane", "High Street", "Victoria Square", "Church Road",
           "Trinity Road", "Colliton Park", "Kingsway", "Castle Street")
OFSTED_OFFICES = (
    ("Freshford House Redcliffe Way Bristol BS1 6NL T 0300 1231231 enquiries@ofsted.gov.uk "
     "www.ofsted.gov.uk Direct T 0117 9456333", "Direct F 0117 9456554",
     "Safeguarding.lookedafterchildren@ofsted.gov.uk"),
    ("Aviation House 125 Kingsway London WC2B 6SE T 0300 123 1231 enquiries@ofsted.gov.uk "
     "www.ofsted.gov.uk", "Direct T 020 7421 6855", "Direct F 020 7421 6546"),
    ("Royal Exchange Buildings St Ann's Square Manchester M2 7LA T 0300 123 1231 "
     "enquiries@ofsted.gov.uk www.ofsted.gov.uk", "Direct T 0161 618 8207", "Direct F 0161 618 8514"),
    ("Cedar House 21 William Street Edgbaston Birmingham B15 1LH T 0300 123 1231 "
     "enquiries@ofsted.gov.uk www.ofsted.gov.uk", "Direct T 0121 683 3262", "Direct F 0121 683 3299"),
)

# --- the finding pool ----------------------------------------------------------------------------
# theme -> (findings that praise, findings that criticise). Each entry is one whole finding.
THEMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "timeliness_of_assessments": (
        ("Initial and core assessments are completed within timescales in the large majority of "
         "cases and performance compares well with statistical neighbours.",
         "The timeliness of initial assessments has improved significantly over the past year and "
         "is now above the national average.",
         "Core assessments are completed promptly and the quality of analysis in them is good, "
         "ensuring that children receive services without delay."),
        ("The timeliness of initial and core assessments is poor and remains below the targets set "
         "by the council and the national average. This leads to a delay in service provision for "
         "some children.",
         "Overall the timeliness of initial and core assessments has improved. However this "
         "improvement varies considerably between teams and in some cases is considerably below "
         "the target set by the council.",
         "A significant number of core assessments are not completed within timescales and "
         "extensions are not always authorised by managers."),
    ),
    "unallocated_work": (
        ("There is no unallocated work in the referral and assessment teams and cases are allocated "
         "promptly to suitably qualified social workers.",
         "All cases requiring an initial assessment are allocated within one working day and "
         "caseloads are monitored closely by team managers."),
        ("There is considerable delay in the allocation of cases requiring an initial assessment. "
         "In the teams visited, a substantial number of cases were found to be unallocated.",
         "Although there is currently no unallocated work, during the past six months significant "
         "numbers of initial assessments have been unallocated for short periods.",
         "Unallocated cases are held on a duty system without a named social worker and the risks "
         "to these children are not reviewed regularly by managers."),
    ),
    "management_oversight": (
        ("Team managers are readily available to offer advice and guidance with regards to case "
         "work decision making and staff feel well supported in their work.",
         "Management oversight of casework is clearly evidenced on files and decisions are "
         "recorded with the reasons for them.",
         "Staff report that managers are accessible and ensure that decision making when children "
         "are at risk of harm is prompt and effective."),
        ("Management oversight of decision making about contacts is not always evidenced on file "
         "and the rationale for decisions is not consistently recorded.",
         "Managers do not consistently record their decisions on case files and it is not always "
         "clear how risk has been assessed.",
         "Decisions to close cases are not always endorsed by a manager, and in some cases seen "
         "closure was premature."),
    ),
    "supervision": (
        ("Supervision is regular and provides good support to staff. It helps inform case work "
         "planning and ensures appropriate management oversight is maintained.",
         "Newly qualified social workers receive good support and training with a programme of "
         "fortnightly supervision to help their continuing professional development.",
         "Staff receive regular, recorded supervision which is reflective and challenging."),
        ("Social workers receive regular supervision but the quality is too variable. The "
         "recording of the actions needed to move case work on is inconsistent.",
         "The quality of supervision varies. Most staff feel supported through the supervision "
         "process, however inspectors saw some evidence of infrequent supervision sessions.",
         "Supervision records are brief and do not demonstrate reflective discussion of "
         "casework or clear actions with timescales."),
    ),
    "case_file_audit": (
        ("A robust programme of case file auditing is in place and the findings are used to improve "
         "practice across teams.",
         "Senior managers undertake regular audits of case files and the results are reported to "
         "the local safeguarding children board."),
        ("Inspectors did not find any evidence of regular case file auditing taking place, leading "
         "to team and senior managers not being sufficiently informed about the quality of practice.",
         "Although team managers undertake case file audits at the point of transfer of cases there "
         "are no systems in place to regularly audit cases.",
         "Case file audits have been introduced but are not yet undertaken systematically and "
         "learning from them is not shared with staff."),
    ),
    "performance_information": (
        ("Performance management systems deliver timely and good quality management information "
         "to managers which is used to inform service planning.",
         "Performance information is robust and is used effectively by managers at all levels to "
         "monitor the quality and timeliness of work."),
        ("Information relating to performance indicators is unreliable and detailed performance "
         "management information is not routinely available to team managers.",
         "The analysis and impact of management information and monitoring are variable. There "
         "are significant areas of practice which are currently not monitored on a regular basis.",
         "Performance data on re-referrals are not analysed to understand the reasons for the "
         "high rate of re-referral."),
    ),
    "common_assessment_framework": (
        ("The common assessment framework is well established and partner agencies use it "
         "confidently to provide early help to children and families.",
         "Good use is made of the common assessment framework (CAF) and lead professionals "
         "are identified in all cases seen."),
        ("Although there has been an increase in the use of the common assessment framework, this "
         "is not embedded across partner agencies.",
         "A structure to support the use of the common assessment framework (CAF) is in place but "
         "use of the CAF is not fully embedded across all partner agencies and so its impact has "
         "yet to be fully realised.",
         "The common assessment framework is not sufficiently embedded within inter-agency "
         "practice in order for it to be an effective early intervention strategy."),
    ),
    "ethnicity_and_diversity": (
        ("Assessments consistently take account of the ethnicity, culture, religion and language "
         "of children and their families.",
         "The ethnicity of children is recorded in all cases seen and interpreters are used where "
         "needed."),
        ("The ethnicity of service users is not always recorded or taken into account in "
         "assessments or management information and so service design will not reflect the diverse "
         "needs of the community.",
         "Case records do not consistently reflect the impact and relevance of culture, ethnicity "
         "or beliefs when assessing the needs of children and their families.",
         "Diversity issues are not routinely considered in assessments and plans."),
    ),
    "views_of_children_and_families": (
        ("Children and family members are seen during assessments and their views are being "
         "appropriately recorded and contribute to case planning.",
         "The wishes and feelings of children and carers are taken into account and are clearly "
         "recorded in assessments.",
         "Children and young people are routinely seen and spoken to as part of assessments."),
        ("A survey of the views of children and their carers using the contact, referral and "
         "assessment service has not taken place since 2008. As a result their collated views are "
         "not used systematically to review and help inform practice developments.",
         "Children are not always seen alone during assessments and their views are not "
         "consistently recorded.",
         "There is no systematic method for gathering the views of children and families on the "
         "service they receive."),
    ),
    "multi_agency_working": (
        ("Successful communication and information sharing between agencies contribute well to "
         "the safeguarding of children.",
         "Partnership working with the police and health services is strong and strategy "
         "discussions are held promptly.",
         "Multi-agency working is well developed and partner agencies understand their "
         "responsibilities for safeguarding children."),
        ("Strategy discussions do not always include all relevant agencies and are not "
         "consistently recorded.",
         "Information sharing with health services is inconsistent and referrals from partner "
         "agencies are not always followed up in writing.",
         "Feedback to referring agencies on the outcome of their referrals is not provided "
         "consistently."),
    ),
    "out_of_hours_service": (
        ("Out of hours duty arrangements are clear and link well to the referral and assessment "
         "teams. This service has access to up to date case information.",
         "The emergency duty team has good links with the assessment teams through an electronic "
         "alert system. This contributes to consistency of practice for children and young people.",
         "The children's rapid response team provides a good and proactive out-of-hours service."),
        ("The emergency duty team does not have access to the electronic case records and "
         "information passed to daytime teams is not always acted upon promptly.",
         "Arrangements for the out of hours service are not clearly understood by all daytime "
         "staff and handover of work is inconsistent."),
    ),
    "workforce_and_caseloads": (
        ("Staff are well supported, morale is high and turnover is low. This provides good "
         "stability and consistency of service provision for children and their families.",
         "All staff undertaking Section 47 investigations are suitably qualified and experienced.",
         "Caseloads are manageable and are monitored closely by managers."),
        ("Not all staff undertaking referral and assessment work are suitably qualified and "
         "experienced.",
         "High caseloads and a reliance on agency staff in the assessment teams are affecting the "
         "consistency of practice.",
         "Due to the high volumes of work within teams newly qualified staff are required on "
         "occasions to undertake highly complex child protection work."),
    ),
    "training": (
        ("Staff have access to relevant training; they are well informed about up to date practice "
         "and they use this knowledge when providing services to children and their families.",
         "Newly qualified staff report that they receive satisfactory induction and good quality "
         "training and support."),
        ("Training in assessment and analysis has not been provided to all staff and some staff "
         "have not received child protection training for several years.",
         "Staff have limited access to training on domestic abuse and substance misuse."),
    ),
    "child_protection_conferences": (
        ("Initial child protection conferences are held within timescale and are well attended by "
         "partner agencies.",
         "Section 47 enquiries are thorough and are undertaken jointly with the police where "
         "appropriate.",
         "In the cases seen by inspectors, children at risk of significant harm were identified "
         "promptly and were subject to timely child protection investigations."),
        ("Initial child protection conferences are frequently held outside of statutory "
         "timescales. This delays prompt multi-agency planning to protect children.",
         "Section 47 child protection enquiries do not routinely lead to the undertaking of a core "
         "assessment. This is not in line with statutory guidance.",
         "The threshold for initiating section 47 enquiries is not consistently applied across "
         "teams."),
    ),
    "domestic_abuse": (
        ("Good action has been taken in the appointment of a senior practitioner social work post "
         "to work directly with the police on domestic violence referrals.",
         "Child protection officers are co-located within the police domestic abuse team and "
         "domestic abuse notifications are screened promptly."),
        ("There is a backlog of police notifications of domestic violence incidents awaiting "
         "screening and some have not been considered for several weeks.",
         "The response to domestic abuse notifications is inconsistent and the risk to children "
         "is not always assessed."),
    ),
    "disabled_children": (
        ("Contact, referral and assessment services for disabled children are highly effective "
         "and comprehensive.",
         "The children with disabilities team consists of suitably qualified staff and child "
         "protection investigations are undertaken by this team."),
        ("Assessments of disabled children do not always address safeguarding concerns and "
         "thresholds for the disabled children's team are not clear to partner agencies.",
         "Disabled children are not always seen and their communication needs are not "
         "consistently considered in assessments."),
    ),
    "thresholds_and_contact_screening": (
        ("The call centre provides an efficient and effective service for referrers and ensures "
         "that child protection concerns are promptly directed to appropriate staff.",
         "Thresholds for access to services are clear and are well understood by partner agencies.",
         "Contacts are routinely screened by qualified staff and signed off by managers."),
        ("Practice for responding to initial contacts is not consistent across teams. In some cases "
         "contacts are not passed to a manager for decision for a number of days.",
         "Thresholds are not consistently understood by partner agencies, leading to a high number "
         "of contacts that do not meet the criteria for a social care service.",
         "The high rate of re-referrals indicates that thresholds are not always applied "
         "appropriately when cases are closed."),
    ),
    "case_recording_systems": (
        ("Once a decision has been made to offer a service, record keeping is up to date, includes "
         "sufficient detail and demonstrates how decisions have been made.",
         "The electronic recording system is well used and case records are up to date."),
        ("The integrated children's system has not as yet developed beyond the recording of "
         "initial and core assessments and records held on an alternative system are not up to "
         "date.",
         "The key findings from core assessments are not always recorded promptly which delays both "
         "authorisation by managers and effective inter-agency intervention.",
         "Chronologies are not in place on case files and case summaries are not kept up to date."),
    ),
}

CONSEQUENCES_NEGATIVE = (
    "This leads to a delay in service provision for some children.",
    "As a result, some children and families do not receive a prompt and appropriate service.",
    "This adversely impacts on the capacity of social workers and managers to do their work effectively.",
    "Senior managers are aware of this and have plans in place to address it.",
    "This results in a lack of management oversight to improve social work practice.",
    "Consequently there are no robust systems in place to ensure that assessments are completed "
    "within timescales.",
)
CONSEQUENCES_PRIORITY = (
    "This leaves some children at risk of harm.",
    "This has resulted in children being left at risk of significant harm for long periods.",
    "The council has not yet taken effective action to address this.",
)
CONSEQUENCES_POSITIVE = (
    "This contributes to consistency of practice for children and young people.",
    "This ensures that children are provided with appropriate services.",
    "This provides good stability and consistency of service provision for children and their families.",
)

HEADINGS = {
    "strength": ("Strengths",),
    "satisfactory": ("Satisfactory practice",
                     "The service meets the requirements of statutory guidance in the following areas"),
    "priority_action": ("Areas for priority action",),
    "area_for_development": ("Areas for development",),
}
SECTION_ORDER = ("strength", "satisfactory", "priority_action", "area_for_development")
BULLETS_TEXT = ("- ", "- ", "• ", "– ", "* ", "\uf0b7 ")

INTRO = (
    "This letter summarises the findings of the recent unannounced inspection of contact, referral "
    "and assessment arrangements within local authority children's services in {authority} which was "
    "conducted on {dates}. The inspection was carried out under {basis}. It will contribute to the "
    "annual review of the performance of the authority's children's services, for which Ofsted will "
    "award a rating later in the year. I would like to thank all of the staff we met for their "
    "assistance in undertaking this inspection."
)
SAMPLED = (
    "The inspection sampled the quality and effectiveness of contact, referral and assessment "
    "arrangements and their impact on minimising any child abuse and neglect. Inspectors considered a "
    "range of evidence, including: electronic case records; supervision files and notes; observation of "
    "social workers and senior practitioners undertaking referral and assessment duties; and other "
    "information provided by staff and managers. Inspectors also spoke to a range of staff including "
    "managers, social workers, other practitioners and administrative staff."
)
BASIS_138 = "section 138 of the Education and Inspections Act 2006"
BASIS_OTHER = "section 20 of the Children Act 2004"
HMI = "Her Majesty's Inspector"

FIRST_DAY = dt.date(2009, 6, 1)
LAST_DAY = dt.date(2012, 3, 31)


# --- the record ---------------------------------------------------------------------------------

@dataclass(slots=True)
class SyntheticLetter:
    """One generated letter: the text file, its rendering choices, and the correct parse."""

    seed: int
    authority: Authority
    text: str  # as a text file holds it (newlines "\n"; see `newline`)
    expected: dict[str, Any]  # the correct parse, dates as YYYY-MM-DD, plus gss_code / la_name
    encoding: str = "utf-8"  # utf-8 | utf-8-sig | cp1252
    newline: str = "\n"
    layout: dict[str, Any] = field(default_factory=dict)  # structure the PDF renderer reads

    def to_bytes(self) -> bytes:
        return self.text.replace("\n", self.newline).encode(self.encoding)

    def to_letter(self, parser_version: str = "synthetic", source_format: str = "text") -> Letter:
        """The expected parse as the typed record the parser returns."""
        e = self.expected
        return Letter(
            parser_version=parser_version,
            source_format=source_format,  # type: ignore[arg-type]
            letter_date=dt.date.fromisoformat(e["letter_date"]),
            recipient_name=e["recipient_name"],
            recipient_title=e["recipient_title"],
            authority_name=e["authority_name"],
            inspection_start_date=dt.date.fromisoformat(e["inspection_start_date"]),
            inspection_end_date=dt.date.fromisoformat(e["inspection_end_date"]),
            statutory_basis=e["statutory_basis"],
            previous_inspection=e["previous_inspection"],
            summary=e["summary"],
            inspector_name=e["inspector_name"],
            findings=tuple(Finding(f["category"], f["heading"], f["ordinal"], f["text"])
                           for f in e["findings"]),
            copy_recipients=tuple(CopyRecipient(c["ordinal"], c["name"], c["role"])
                                  for c in e["copy_recipients"]),
        )


# --- small pure helpers -------------------------------------------------------------------------

def fmt_date(d: dt.date) -> str:
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def fmt_date_range(start: dt.date, end: dt.date, dash: bool) -> str:
    """The forms the letters use: '18 and 19 May 2010', '8–9 March 2011',
    '30 November and 1 December 2010'."""
    if start == end:
        return fmt_date(start)
    if start.year != end.year:
        return f"{fmt_date(start)} and {fmt_date(end)}"
    if start.month != end.month:
        return f"{start.day} {MONTHS[start.month - 1]} and {fmt_date(end)}"
    sep = "\u2013" if dash else " and "
    return f"{start.day}{sep}{fmt_date(end)}"


def _rng(seed_or_rng: int | random.Random) -> tuple[random.Random, int]:
    if isinstance(seed_or_rng, random.Random):
        seed = seed_or_rng.randrange(2**63)
        return random.Random(seed), seed
    return random.Random(seed_or_rng), int(seed_or_rng)


MIN_FINDINGS = 3  # the data-quality gate expects 3-40 findings per letter


def _weekday_on_or_after(d: dt.date, weekdays: tuple[int, ...]) -> dt.date:
    while d.weekday() not in weekdays:
        d += dt.timedelta(days=1)
    return d


def _inspection_dates(rng: random.Random, first: dt.date = FIRST_DAY,
                      last: dt.date = LAST_DAY) -> tuple[dt.date, dt.date, dt.date]:
    """(first day, last day, letter date) of an inspection starting between `first` and `last`."""
    span = (last - first).days - 3
    while True:
        start = _weekday_on_or_after(first + dt.timedelta(days=rng.randrange(span)), (0, 1, 2, 3))
        end = start + dt.timedelta(days=1)
        if end <= last and not (start.month == 12 and start.day >= 20) and not (
            start.month == 1 and start.day <= 3
        ):
            break
    letter = _weekday_on_or_after(end + dt.timedelta(days=rng.randint(14, 40)), (0, 1, 2, 3, 4))
    return start, end, letter


def _person(rng: random.Random) -> tuple[str, str, str]:
    """(courtesy title, first name, surname)."""
    first = rng.choice(FIRST_NAMES)
    if rng.random() < 0.08:
        title = "Dr"
    elif first in FEMALE:
        title = rng.choice(("Mrs", "Ms", "Ms", "Miss"))
    else:
        title = "Mr"
    return title, first, rng.choice(SURNAMES)


def _postcode(rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPRSTUWYZ"
    area = rng.choice(letters) + rng.choice(letters)
    return f"{area}{rng.randint(1, 29)} {rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"


def _findings(rng: random.Random, category: str, n: int, used: set[str]) -> list[tuple[str, str]]:
    """n (theme, text) pairs for a section, no text repeated within the letter."""
    positive = category in ("strength", "satisfactory")
    out: list[tuple[str, str]] = []
    themes = list(THEMES)
    rng.shuffle(themes)
    tries = 0
    while len(out) < n and tries < 200:
        tries += 1
        theme = themes[tries % len(themes)]
        pool = THEMES[theme][0 if positive else 1]
        text = rng.choice(pool)
        if text in used:
            continue
        used.add(text)
        if category == "priority_action":
            text += " " + rng.choice(CONSEQUENCES_PRIORITY)
        elif not positive and rng.random() < 0.3:
            text += " " + rng.choice(CONSEQUENCES_NEGATIVE)
        elif positive and rng.random() < 0.15:
            text += " " + rng.choice(CONSEQUENCES_POSITIVE)
        out.append((theme, text))
    return out


def _summary(counts: dict[str, int], sat_heading: str) -> str:
    sat = "satisfactory practice" if sat_heading.startswith("Satisfactory") else (
        "areas of practice that met requirements")
    good = []
    if counts["strength"]:
        good.append("areas of strength")
    if counts["satisfactory"]:
        good.append(sat)
    bad = []
    if counts["area_for_development"]:
        bad.append("some areas for development")
    if counts["priority_action"]:
        bad.append("areas for priority action")
    head = " and ".join(good) if good else ""
    tail = " and ".join(bad)
    if head and tail:
        return f"The inspection identified {head}, with {tail}."
    return f"The inspection identified {head or tail}."


def _split_at_lowercase_word(rng: random.Random, text: str) -> tuple[str, str] | None:
    """Split a finding where a page break could fall: before a lower-case word, not after a stop."""
    words = text.split(" ")
    points = [i for i in range(3, len(words) - 2)
              if words[i][:1].islower() and not words[i - 1].endswith((".", ":", ";"))]
    if not points:
        return None
    i = rng.choice(points)
    return " ".join(words[:i]), " ".join(words[i:])


# --- generation ---------------------------------------------------------------------------------

def generate_letter(
    seed_or_rng: int | random.Random,
    *,
    authority: Authority | str | None = None,
    priority_action: bool | None = None,
    window: tuple[dt.date, dt.date] | None = None,
    previous_inspection: dt.date | None | EllipsisType = ...,
) -> SyntheticLetter:
    """A realistic letter and its expected parse, deterministic from the seed.

    `authority` may be an `Authority`, a GSS code or a letter name; `priority_action` forces
    (or forbids) an "Areas for priority action" section. `window` (first, last day) bounds the
    inspection's start (default: the whole programme). `previous_inspection`: the start of the
    authority's previous inspection, which the letter may mention ("the last inspection in May
    2010"), or None for none; left out, a made-up one is mentioned now and then.
    """
    rng, seed = _rng(seed_or_rng)
    if isinstance(authority, str):
        authority = next(a for a in AUTHORITIES if authority in (a.gss_code, a.letter_name, a.la_name))
    auth = authority or rng.choice(AUTHORITIES)
    start, end, letter_date = _inspection_dates(rng, *(window or (FIRST_DAY, LAST_DAY)))

    # --- counts and findings
    if priority_action is None:
        priority_action = rng.random() < 0.15
    counts = {
        "strength": rng.choice((0, 1, 2, 2, 3, 3, 4, 5)),
        "satisfactory": rng.randint(2, 9),
        "priority_action": rng.randint(1, 3) if priority_action else 0,
        "area_for_development": rng.choice((0,) + tuple(range(2, 11))),
    }
    if counts["area_for_development"] == 0 and counts["priority_action"]:
        counts["area_for_development"] = rng.randint(2, 6)
    if sum(counts.values()) < MIN_FINDINGS:  # real letters list at least a handful of findings
        counts["satisfactory"] += MIN_FINDINGS - sum(counts.values())
    sat_heading = rng.choice(HEADINGS["satisfactory"])
    used: set[str] = set()
    sections: list[tuple[str, str, list[tuple[str, str]]]] = []
    for cat in SECTION_ORDER:
        if counts[cat]:
            heading = sat_heading if cat == "satisfactory" else HEADINGS[cat][0]
            sections.append((cat, heading, _findings(rng, cat, counts[cat], used)))

    # --- people and places
    r_title, r_first, r_last = _person(rng)
    recipient_name = f"{r_title} {r_first} {r_last}"
    recipient_title = rng.choice(DIRECTOR_TITLES)
    address = [recipient_name, recipient_title]
    if rng.random() < 0.5:
        address.append(auth.letter_name)
    address += [rng.choice(BUILDINGS)]
    if rng.random() < 0.5:
        address.append(f"{rng.randint(1, 60)} {rng.choice(STREETS)}")
    address += [auth.place, _postcode(rng)]
    one_line_address = rng.random() < 0.15
    inspector = rng.choice(INSPECTORS)
    basis = BASIS_138 if rng.random() < 0.93 else BASIS_OTHER
    dates_text = fmt_date_range(start, end, dash=rng.random() < 0.25)
    title_place = auth.place if rng.random() < 0.4 else auth.letter_name

    previous = None
    previous_sentence = ""
    if previous_inspection is ...:
        prev = (start - dt.timedelta(days=rng.randint(300, 420))
                if start >= dt.date(2010, 6, 1) and rng.random() < 0.35 else None)
    else:
        prev = previous_inspection if previous_inspection and rng.random() < 0.6 else None
    if prev is not None:
        previous = f"{MONTHS[prev.month - 1]} {prev.year}"
        previous_sentence = rng.choice((
            " The majority of areas for development identified in the last inspection in {p} "
            "have been addressed.",
            " Some of the areas for development identified in the last inspection in {p} "
            "have not yet been fully addressed.",
        )).format(p=previous)
    summary = _summary(counts, sat_heading)

    # --- copy list
    dfe = "Department for Education" if letter_date >= dt.date(2010, 5, 12) else (
        "Department for Children, Schools and Families")
    copies: list[tuple[str, str]] = []
    t, f, s = _person(rng)
    ceo = f"{f} {s}" if rng.random() < 0.7 else f"{t} {f} {s}"
    copies.append((ceo, f"Chief Executive, {auth.letter_name}"))
    t, f, s = _person(rng)
    copies.append((f"{f} {s}", f"Chair of {auth.place} Safeguarding Children Board"))
    if rng.random() < 0.8:
        t, f, s = _person(rng)
        copies.append((f"{f} {s}" if rng.random() < 0.7 else f"Cllr {f} {s}",
                       f"Lead Member for Children's Services, {auth.letter_name}"))
    copies.append(("Andrew Spencer" if rng.random() < 0.8 else "Jeanette Pugh", dfe))

    closing = ("Any areas for development and priority action identified above will be specifically "
               "considered in any future inspection of services to safeguard children within your area."
               if counts["priority_action"] or rng.random() < 0.3 else
               "Any areas for development identified above will be specifically considered in any future "
               "inspection of services to safeguard children within your area.")

    findings_expected = []
    for cat, heading, items in sections:
        for i, (theme, text) in enumerate(items, 1):
            findings_expected.append({"category": cat, "heading": heading, "ordinal": i, "text": text,
                                      "theme": theme})
    expected: dict[str, Any] = {
        "letter_date": letter_date.isoformat(),
        "recipient_name": recipient_name,
        "recipient_title": recipient_title,
        "authority_name": auth.letter_name,
        "inspection_start_date": start.isoformat(),
        "inspection_end_date": end.isoformat(),
        "statutory_basis": basis,
        "previous_inspection": previous,
        "summary": summary,
        "inspector_name": inspector,
        "findings": findings_expected,
        "copy_recipients": [{"ordinal": i, "name": n, "role": r} for i, (n, r) in enumerate(copies, 1)],
        "counts": {c: counts[c] for c in ("strength", "satisfactory", "area_for_development",
                                          "priority_action")},
        "gss_code": auth.gss_code,
        "la_name": auth.la_name,
    }

    layout = {
        "office": rng.choice(OFSTED_OFFICES),
        "letter_date": fmt_date(letter_date),
        "address": address,
        "one_line_address": one_line_address,
        "salutation": f"Dear {r_title} {r_last}",
        "title": ("Annual unannounced inspection of contact, referral and assessment arrangements "
                  f"within {title_place} children's services"),
        "paragraphs": [INTRO.format(authority=auth.letter_name, dates=dates_text, basis=basis),
                       SAMPLED, summary + previous_sentence,
                       "From the evidence gathered, the following features of the service were identified:"],
        "sections": [(heading, [text for _, text in items]) for _, heading, items in sections],
        "closing": closing,
        "inspector": inspector,
        "copies": [f"{n}, {r}" for n, r in copies],
    }
    text = _render_text(rng, layout)
    enc = rng.choices(("utf-8", "utf-8-sig", "cp1252"), weights=(75, 10, 15))[0]
    if enc == "cp1252" and "\uf0b7" in text:
        text = text.replace("\uf0b7 ", "\u2022 ")
    newline = "\r\n" if rng.random() < 0.2 else "\n"
    return SyntheticLetter(seed=seed, authority=auth, text=text, expected=expected, encoding=enc,
                           newline=newline, layout=layout)


def _render_text(rng: random.Random, lay: dict[str, Any]) -> str:
    """The letter as the text versions are laid out: long lines or hard-wrapped, page-break gaps."""
    wrap = rng.choice((0, 0, 0, rng.randint(72, 96)))  # 0: one line per paragraph, like the samples
    bullet = rng.choice(BULLETS_TEXT)
    indent = rng.choice(("", "  ")) if wrap else ""
    page_chars = rng.randint(2600, 3600)
    out: list[str] = []
    written = 0
    next_break = page_chars

    def para(s: str, first: str = "", rest: str = "") -> list[str]:
        if not wrap:
            return [first + s]
        return textwrap.wrap(s, wrap, initial_indent=first, subsequent_indent=rest,
                             break_long_words=False, break_on_hyphens=False)

    def emit(lines: list[str], blank_after: int = 1) -> None:
        nonlocal written
        out.extend(lines)
        out.extend([""] * blank_after)
        written += sum(len(x) + 1 for x in lines)

    style = rng.choice(("plain", "repeat_header", "office"))
    if style == "repeat_header":
        emit(["", "", lay["letter_date"], "", lay["address"][0]], 3)
    elif style == "office":
        emit(list(lay["office"]), 2)
        emit(list(lay["office"]), 3)
    else:
        emit([], 2)
    emit([lay["letter_date"]])
    emit([" ".join(lay["address"])] if lay["one_line_address"] else list(lay["address"]))
    emit([lay["salutation"]])
    emit(para(lay["title"]))
    for p in lay["paragraphs"]:
        emit(para(p))
    for heading, items in lay["sections"]:
        emit([heading])
        for item in items:
            if written + len(item) > next_break:
                split = _split_at_lowercase_word(rng, item)
                if split:
                    a, b = split
                    emit(para(a, bullet, indent), rng.choice((1, 3, 4, 5)))
                    emit(para(b, "", indent) if wrap else [b])
                    next_break = written + page_chars
                    continue
                next_break = written + page_chars
            emit(para(item, bullet, indent))
    emit(para(lay["closing"]))
    emit(["Yours sincerely"])
    if rng.random() < 0.2:
        emit([f"{lay['inspector']} {HMI}"])
    else:
        emit([lay["inspector"], HMI])
    copies = lay["copies"]
    if rng.random() < 0.3:
        out.append("Copy:")
        out.append("")
        for c in copies:
            out.extend([c, ""])
    else:
        out.append("Copy: " + copies[0])
        out.extend(copies[1:])
    return "\n".join(out).rstrip("\n") + rng.choice(("", "\n"))


# --- PDF ----------------------------------------------------------------------------------------

def render_pdf(letter: SyntheticLetter, *, seed: int | None = None) -> bytes:
    """The letter as an Ofsted PDF: letterhead, a running header from page 2, 'Page N of M' footers.

    Uses fpdf2's core Helvetica in cp1252, so bullets are '•' and date ranges keep their en dash.
    Page breaks fall wherever the text reaches the bottom margin, often in the middle of a finding.
    """
    from fpdf import FPDF  # dev dependency: imported only when rendering

    rng = random.Random(letter.seed if seed is None else seed)
    lay = letter.layout
    header_text = rng.choice((lay["letter_date"], f"{lay['address'][0]} - {lay['letter_date']}", "Ofsted"))

    class _LetterPDF(FPDF):
        def header(self) -> None:
            if self.page_no() > 1:
                self.set_font("Helvetica", "", 8)
                self.cell(0, 5, header_text, align="R", new_x="LMARGIN", new_y="NEXT")
                self.ln(4)

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("Helvetica", "", 8)
            self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")

    pdf = _LetterPDF(format="A4")
    pdf.core_fonts_encoding = "windows-1252"
    pdf.set_creator("devtools.synthetic")
    pdf.set_creation_date(dt.datetime(2010, 1, 1, tzinfo=dt.UTC))
    pdf.alias_nb_pages()
    pdf.set_auto_page_break(True, margin=rng.choice((20, 25, 30)))
    pdf.set_margins(20, 18, 20)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    size = rng.choice((10, 10.5, 11))
    lh = size * 0.5

    def text_block(s: str, style: str = "", gap: float = 3.0, font_size: float | None = None) -> None:
        pdf.set_font("Helvetica", style, font_size or size)
        pdf.multi_cell(width, lh, s, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    # letterhead
    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(0, 10, "Ofsted", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 7)
    for line in lay["office"]:
        pdf.multi_cell(width, 3.5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    text_block(lay["letter_date"])
    if lay["one_line_address"]:
        text_block(" ".join(lay["address"]))
    else:
        for line in lay["address"]:
            text_block(line, gap=0)
        pdf.ln(3)
    text_block(lay["salutation"])
    text_block(lay["title"], "B")
    for p in lay["paragraphs"]:
        text_block(p)
    bullet = "\u2022"
    for heading, items in lay["sections"]:
        text_block(heading, "B")
        for item in items:
            pdf.set_font("Helvetica", "", size)
            pdf.cell(6, lh, bullet)
            pdf.multi_cell(width - 6, lh, item, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        pdf.ln(1)
    text_block(lay["closing"])
    text_block("Yours sincerely", gap=10)
    text_block(lay["inspector"], gap=0)
    text_block(HMI)
    pdf.set_font("Helvetica", "", size)
    for i, c in enumerate(lay["copies"]):
        pdf.multi_cell(width, lh, ("Copy: " if i == 0 else "") + c, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


# --- corrections --------------------------------------------------------------------------------
# Ofsted re-issued letters: re-dated, with a finding reworded, moved within its section or taken
# out. A correction is another letter about the same inspection (same authority and dates), dated
# after the letter it corrects; its expected parse says what changed under "correction".
CORRECTION_CHANGES = ("redated", "reworded", "reworded", "moved", "removed")
REWORDINGS = (
    # (what the wording becomes, given the finding without its final full stop)
    lambda t: f"In most of the cases seen, {t[:1].lower()}{t[1:]}.",
    lambda t: f"{t}, in the teams visited.",
    lambda t: f"{t} across the service.",
)


def correct_letter(original: SyntheticLetter, seed: int) -> SyntheticLetter:
    """A re-issue of `original`, deterministic from `seed`: dated 2 to 20 weeks later, and either
    only re-dated or with one finding reworded, moved within its section or removed."""
    rng = random.Random(seed)
    expected = json.loads(json.dumps(original.expected))
    layout = json.loads(json.dumps(original.layout))
    first = dt.date.fromisoformat(expected["letter_date"])
    letter_date = _weekday_on_or_after(first + dt.timedelta(days=rng.randint(14, 140)), (0, 1, 2, 3, 4))
    sections: dict[str, list[dict[str, Any]]] = {}
    for f in expected["findings"]:
        sections.setdefault(f["category"], []).append(f)
    several = [c for c, fs in sections.items() if len(fs) > 1]
    change = rng.choice(CORRECTION_CHANGES)
    if change in ("moved", "removed") and not several:
        change = "reworded"
    if change == "removed" and len(expected["findings"]) <= MIN_FINDINGS:
        change = "moved"
    record: dict[str, Any] = {"of_seed": original.seed, "change": change,
                              "first_letter_date": expected["letter_date"]}
    if change == "reworded":
        category = rng.choice(sorted(sections))
        f = rng.choice(sections[category])
        new_text = rng.choice(REWORDINGS)(f["text"].rstrip(". "))
        record.update(category=category, old_ordinal=f["ordinal"], new_ordinal=f["ordinal"],
                      old_text=f["text"], new_text=new_text)
        f["text"] = new_text
    elif change in ("moved", "removed"):
        category = rng.choice(sorted(several))
        listed = sections[category]
        i = rng.randrange(len(listed))
        f = listed.pop(i)
        record.update(category=category, old_ordinal=f["ordinal"], old_text=f["text"])
        if change == "moved":
            j = rng.choice([k for k in range(len(listed) + 1) if k != i])
            listed.insert(j, f)
            record.update(new_ordinal=j + 1, new_text=f["text"])
    findings = [f for c in SECTION_ORDER for f in sections.get(c, [])]
    for c in SECTION_ORDER:
        for n, f in enumerate(sections.get(c, []), 1):
            f["ordinal"] = n
    expected.update(letter_date=letter_date.isoformat(), findings=findings, correction=record)
    expected["counts"] = {c: len(sections.get(c, [])) for c in expected["counts"]}
    layout["letter_date"] = fmt_date(letter_date)
    layout["sections"] = [(heading, [f["text"] for f in sections[c]])
                          for (heading, _), c in zip(layout["sections"], _section_categories(original),
                                                     strict=True) if sections.get(c)]
    text = _render_text(rng, layout)
    if original.encoding == "cp1252":
        text = text.replace("\uf0b7 ", "\u2022 ")
    return SyntheticLetter(seed=seed, authority=original.authority, text=text, expected=expected,
                           encoding=original.encoding, newline=original.newline, layout=layout)


def _section_categories(letter: SyntheticLetter) -> list[str]:
    """The category of each of the letter's sections, in order."""
    return list(dict.fromkeys(f["category"] for f in letter.expected["findings"]))


# --- the programme ---------------------------------------------------------------------------------
# The programme inspected every authority once a year: one inspection per authority per
# programme year (April-March; the first year began in June 2009), a share of authorities
# inspected a second time in a year, a share of letters corrected.
PROGRAMME_YEARS = (
    (dt.date(2009, 6, 1), dt.date(2010, 3, 31)),
    (dt.date(2010, 4, 1), dt.date(2011, 3, 31)),
    (dt.date(2011, 4, 1), LAST_DAY),
)
REINSPECTED_SHARE = 0.05  # authorities inspected a second time in a programme year
CORRECTED_SHARE = 0.03  # letters re-issued
MIN_DAYS_BETWEEN_INSPECTIONS = 120  # a second inspection in a year comes at least this long after


def _programme(rng: random.Random, reinspected_share: float):
    """(authority, programme year, round) in corpus order: the authorities in a shuffled order,
    each with one inspection per programme year (and now and then a second in the same year);
    when every authority has had its years, the next round gives each one more inspection a year.
    Rounds after the first go beyond the real programme: they exist so that a benchmark can ask
    for more letters than the programme held."""
    round_ = 0
    while True:
        order = list(AUTHORITIES)
        rng.shuffle(order)
        for authority in order:
            for window in PROGRAMME_YEARS:
                yield authority, window, round_
                if rng.random() < reinspected_share:
                    yield authority, window, round_
        round_ += 1


def _min_gap(round_: int) -> int:
    """Days an inspection keeps from the authority's other inspections: the programme's minimum in
    the first round, halved in each later one, never less than a day (two inspections of one
    authority never start the same day: that is one inspection's identity)."""
    return max(1, MIN_DAYS_BETWEEN_INSPECTIONS >> round_)


def _previous(starts: list[dt.date], start: dt.date) -> dt.date | None:
    earlier = [d for d in starts if d < start]
    return max(earlier) if earlier else None


# --- corpora ------------------------------------------------------------------------------------

def file_name(index: int, letter: SyntheticLetter, ext: str) -> str:
    digest = hashlib.sha256(f"{letter.seed}".encode()).hexdigest()[:16]
    return f"{index:05d}_{digest}.{ext}"


def iter_corpus(n: int, seed: int = 0, pdf_share: float = 0.2, *,
                reinspected_share: float = REINSPECTED_SHARE, corrected_share: float = CORRECTED_SHARE):
    """(index, letter, is_pdf) for a corpus of n letters, deterministic from the seed; nothing
    held in memory but each authority's inspection dates.

    The letters follow the programme (`_programme`): one inspection per authority per programme
    year, `reinspected_share` of them inspected again in the same year (at least
    MIN_DAYS_BETWEEN_INSPECTIONS days after the first), each letter naming the authority's real previous
    inspection now and then; `corrected_share` of the letters are followed by a correction
    (`correct_letter`: re-dated, a finding reworded, moved or removed). A corpus larger than the
    programme (about 480 letters) goes on in further rounds, each authority's inspections closer
    together (`_min_gap`), never two on one day; one that cannot fit raises ValueError.
    """
    master = random.Random(seed)
    starts: dict[str, list[dt.date]] = {}
    stated: dict[str, list[tuple[dt.date, dt.date]]] = {}  # (previous, start) a letter names
    programme = _programme(master, reinspected_share)
    i, placed_in_round, last_round = 0, 0, 0
    while i < n:
        authority, window, round_ = next(programme)
        if round_ != last_round:
            if not placed_in_round:  # a whole round placed nothing: every authority's years are full
                raise ValueError(f"a corpus of {n} letters does not fit the programme ({i} placed)")
            placed_in_round, last_round = 0, round_
        taken = starts.setdefault(authority.gss_code, [])
        named = stated.setdefault(authority.gss_code, [])
        gap = _min_gap(round_)
        for _ in range(20):  # a start at least `gap` days from each of the authority's inspections,
            # never between a letter and the previous inspection it names (which stays its previous)
            letter_seed = master.randrange(2**63)
            start, _, _ = _inspection_dates(random.Random(letter_seed), *window)
            if all(abs((start - d).days) >= gap for d in taken) and not any(
                    before < start < after for before, after in named):
                break
        else:
            continue  # the year is full for this authority
        placed_in_round += 1
        previous = _previous(taken, start)
        letter = generate_letter(letter_seed, authority=authority, window=window,
                                 previous_inspection=previous)
        taken.append(start)
        if letter.expected["previous_inspection"]:
            named.append((previous, start))
        yield i, letter, master.random() < pdf_share
        i += 1
        if i < n and master.random() < corrected_share:
            yield i, correct_letter(letter, master.randrange(2**63)), master.random() < pdf_share
            i += 1


def write_corpus(
    out_dir: Path | str,
    n: int,
    seed: int = 0,
    pdf_share: float = 0.2,
    *,
    with_expected: bool = False,
    reinspected_share: float = REINSPECTED_SHARE,
    corrected_share: float = CORRECTED_SHARE,
) -> list[Path]:
    """Write n letters (a share as PDF) into out_dir; returns their paths in order.

    With `with_expected`, each letter gets a `<name>.expected.json` beside it (the correct parse).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for i, letter, is_pdf in iter_corpus(n, seed, pdf_share, reinspected_share=reinspected_share,
                                         corrected_share=corrected_share):
        ext = "pdf" if is_pdf else "txt"
        path = out / file_name(i, letter, ext)
        path.write_bytes(render_pdf(letter) if is_pdf else letter.to_bytes())
        if with_expected:
            exp = dict(letter.expected, source_format="pdf" if is_pdf else "text")
            path.with_name(path.name + ".expected.json").write_text(json.dumps(exp, indent=1) + "\n")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m devtools.synthetic", description="write synthetic letters")
    ap.add_argument("out_dir")
    ap.add_argument("n", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pdf-share", type=float, default=0.2)
    ap.add_argument("--expected", action="store_true", help="write <file>.expected.json beside each letter")
    ap.add_argument("--reinspected-share", type=float, default=REINSPECTED_SHARE,
                    help="share of authorities inspected a second time in a programme year")
    ap.add_argument("--corrected-share", type=float, default=CORRECTED_SHARE,
                    help="share of letters followed by a correction")
    args = ap.parse_args(argv)
    paths = write_corpus(args.out_dir, args.n, args.seed, args.pdf_share, with_expected=args.expected,
                         reinspected_share=args.reinspected_share, corrected_share=args.corrected_share)
    print(f"wrote {len(paths)} letters to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
