"""Reference data the generator draws from: names with Britain's diversity,
their nicknames and variant spellings, ONS 2021 ethnic groups, and the code
lists of each feed. Plain data, no logic.

Frequencies are rough shapes, not statistics: enough that common names are
common (so exact-name matching has realistic false friends) and that
apostrophes, hyphens and accents turn up often enough to be tested.
"""

from __future__ import annotations

# fmt: off

# ONS 2021 ethnic group (19 categories) with a rough share for an English
# city, and the name pool each draws from.
ETHNIC_GROUPS: list[tuple[str, str, float, str]] = [
    # code, ONS 2021 category, weight, name pool
    ("A1", "Asian, Asian British or Asian Welsh: Bangladeshi", 0.020, "south_asian_muslim"),
    ("A2", "Asian, Asian British or Asian Welsh: Chinese", 0.015, "chinese"),
    ("A3", "Asian, Asian British or Asian Welsh: Indian", 0.035, "south_asian_indian"),
    ("A4", "Asian, Asian British or Asian Welsh: Pakistani", 0.050, "south_asian_muslim"),
    ("A5", "Asian, Asian British or Asian Welsh: Other Asian", 0.015, "south_asian_indian"),
    ("B1", "Black, Black British, Black Welsh, Caribbean or African: African", 0.035, "west_african"),
    ("B2", "Black, Black British, Black Welsh, Caribbean or African: Caribbean", 0.015, "british"),
    ("B3", "Black, Black British, Black Welsh, Caribbean or African: Other Black", 0.005, "west_african"),
    ("C1", "Mixed or Multiple ethnic groups: White and Asian", 0.008, "british"),
    ("C2", "Mixed or Multiple ethnic groups: White and Black African", 0.006, "british"),
    ("C3", "Mixed or Multiple ethnic groups: White and Black Caribbean", 0.010, "british"),
    ("C4", "Mixed or Multiple ethnic groups: Other Mixed or Multiple ethnic groups", 0.007, "british"),
    ("D1", "White: English, Welsh, Scottish, Northern Irish or British", 0.640, "british"),
    ("D2", "White: Irish", 0.015, "irish"),
    ("D3", "White: Gypsy or Irish Traveller", 0.002, "irish"),
    ("D4", "White: Roma", 0.003, "eastern_european"),
    ("D5", "White: Other White", 0.080, "eastern_european"),
    ("E1", "Other ethnic group: Arab", 0.010, "arabic"),
    ("E2", "Other ethnic group: Any other ethnic group", 0.029, "british"),
]
ETHNIC_CODES = [g[0] for g in ETHNIC_GROUPS]

# Family names per pool, most frequent first (drawn with a 1/rank-ish weight).
FAMILY_NAMES: dict[str, list[str]] = {
    "british": [
        "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson", "Wright",
        "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke",
        "Harris", "Lewis", "Martin", "Cooper", "Hughes", "Edwards", "Turner", "Hill", "Moore", "Ward",
        "Morris", "Mitchell", "Parker", "Shaw", "Lee", "Baker", "Ellis", "Graham", "Atkinson", "McDonald",
        "Smith-Jones", "Harper-Lee", "Fox", "Thomson", "Campbell", "Bell", "Stewart", "Ford", "Dixon", "Webb",
    ],
    "irish": ["Murphy", "Kelly", "O'Brien", "O'Connor", "Byrne", "Ryan", "O'Sullivan", "Walsh", "McCarthy", "Doyle",
              "O'Neill", "Gallagher", "Ní Bhriain", "Ó Súilleabháin"],
    "eastern_european": ["Nowak", "Kowalski", "Wiśniewska", "Wójcik", "Kowalczyk", "Popescu", "Ionescu", "Kazlauskas",
                         "Horváth", "Novák", "Dvořák", "Lewandowski", "Zieliński", "Stan"],
    "south_asian_muslim": ["Khan", "Begum", "Ahmed", "Hussain", "Ali", "Akhtar", "Iqbal", "Rahman", "Mahmood",
                           "Bibi", "Islam", "Uddin", "Miah", "Shah"],
    "south_asian_indian": ["Patel", "Singh", "Kaur", "Sharma", "Gill", "Mistry", "Sandhu", "Kumar", "Shah", "Desai",
                           "Parmar", "Chauhan"],
    "west_african": ["Okafor", "Adeyemi", "Mensah", "Okonkwo", "Adebayo", "Boateng", "Owusu", "Nwosu", "Eze",
                     "Asante", "Abubakar"],
    "chinese": ["Chen", "Wang", "Li", "Zhang", "Liu", "Wong", "Lam", "Cheung", "Ng", "Nguyen"],
    "arabic": ["Hassan", "Ibrahim", "Abdullah", "Mohamed", "Al-Sayed", "El-Amin", "Saleh", "Haddad"],
}

GIVEN_NAMES: dict[str, dict[str, list[str]]] = {
    "british": {
        "F": ["Olivia", "Amelia", "Isla", "Ava", "Mia", "Grace", "Sophia", "Lily", "Freya", "Emily", "Margaret",
              "Patricia", "Susan", "Mary", "Joan", "Elizabeth", "Sarah", "Catherine", "Jennifer", "Zoë", "Chloé",
              "Anne-Marie", "Rebecca", "Jessica", "Hannah", "Dorothy", "Kathleen", "Deborah", "Jacqueline"],
        "M": ["Oliver", "George", "Noah", "Arthur", "Leo", "Harry", "Oscar", "Jack", "John", "David", "Michael",
              "Peter", "Robert", "James", "William", "Thomas", "Daniel", "Adam", "Stephen", "Christopher",
              "Richard", "Anthony", "Jonathan", "Kenneth", "Jean-Luc", "Matthew", "Joseph", "Samuel"],
    },
    "irish": {
        "F": ["Siobhán", "Aoife", "Niamh", "Róisín", "Mary", "Bridget", "Caoimhe", "Sinéad", "Orla", "Catherine"],
        "M": ["Seán", "Patrick", "Ciarán", "Michael", "Liam", "Eoin", "Declan", "Padraig", "Conor", "James"],
    },
    "eastern_european": {
        "F": ["Agnieszka", "Anna", "Katarzyna", "Małgorzata", "Ioana", "Elena", "Zuzana", "Jolanta", "Maria"],
        "M": ["Piotr", "Tomasz", "Krzysztof", "Andrei", "Mihai", "Jakub", "Lukas", "Marek", "Paweł"],
    },
    "south_asian_muslim": {
        "F": ["Fatima", "Aisha", "Ayesha", "Maryam", "Zainab", "Nadia", "Amina", "Rukhsana", "Shazia", "Hafsa"],
        "M": ["Muhammad", "Mohammed", "Ahmed", "Imran", "Bilal", "Hamza", "Tariq", "Abdul", "Zubair", "Usman"],
    },
    "south_asian_indian": {
        "F": ["Priya", "Anjali", "Harpreet", "Sunita", "Kiran", "Meera", "Pooja", "Simran", "Deepa", "Asha"],
        "M": ["Raj", "Arjun", "Harjit", "Vikram", "Sanjay", "Amit", "Gurpreet", "Rahul", "Ravi", "Manjit"],
    },
    "west_african": {
        "F": ["Chidinma", "Ngozi", "Abena", "Adaeze", "Folake", "Ama", "Blessing", "Esther", "Grace", "Precious"],
        "M": ["Chukwuemeka", "Kwame", "Oluwaseun", "Kofi", "Emmanuel", "Tunde", "Chinedu", "Samuel", "Yaw"],
    },
    "chinese": {
        "F": ["Mei", "Xiaoling", "Yan", "Li Na", "Hui", "Ying", "Jing", "Wing", "Grace"],
        "M": ["Wei", "Jun", "Hao", "Ming", "Chi Keung", "Jian", "Kevin", "Tao"],
    },
    "arabic": {
        "F": ["Layla", "Noor", "Yasmin", "Huda", "Rania", "Salma", "Mariam"],
        "M": ["Omar", "Youssef", "Khalid", "Ali", "Hassan", "Karim", "Tariq", "Mohamed"],
    },
}

# Given name -> what people actually write on a form.
NICKNAMES: dict[str, list[str]] = {
    "William": ["Bill", "Will", "Billy"], "Robert": ["Bob", "Rob", "Bobby"], "Margaret": ["Maggie", "Peggy", "Meg"],
    "Elizabeth": ["Liz", "Beth", "Betty"], "James": ["Jim", "Jimmy", "Jamie"], "Michael": ["Mike", "Mick"],
    "Thomas": ["Tom", "Tommy"], "Catherine": ["Kate", "Cathy"], "Patricia": ["Pat", "Trish"], "Susan": ["Sue"],
    "Jennifer": ["Jen", "Jenny"], "Daniel": ["Dan", "Danny"], "Christopher": ["Chris"], "Richard": ["Rick", "Dick"],
    "Anthony": ["Tony"], "Jonathan": ["Jon"], "Kenneth": ["Ken"], "Matthew": ["Matt"], "Joseph": ["Joe"],
    "Samuel": ["Sam"], "Stephen": ["Steve"], "Deborah": ["Debbie"], "Jacqueline": ["Jackie"], "Dorothy": ["Dot"],
    "Kathleen": ["Kath"], "Rebecca": ["Becky"], "Jessica": ["Jess"], "Harry": ["Hal"], "Peter": ["Pete"],
    "David": ["Dave"], "Patrick": ["Paddy", "Pat"], "Mohammed": ["Mo"], "Muhammad": ["Mo"], "Emmanuel": ["Manny"],
    "Oluwaseun": ["Seun"], "Chukwuemeka": ["Emeka"], "Małgorzata": ["Gosia"], "Katarzyna": ["Kasia"],
    "Krzysztof": ["Krzys"], "Alexander": ["Alex"], "Bridget": ["Bridie"],
}

# Spellings a clerk or a phone call produces for the same name.
VARIANTS: dict[str, list[str]] = {
    "Mohammed": ["Muhammad", "Mohammad", "Mohamed"], "Muhammad": ["Mohammed", "Muhammed"],
    "Catherine": ["Kathryn", "Katherine"], "Stephen": ["Steven"], "John": ["Jon"], "Seán": ["Sean", "Shaun"],
    "Siobhán": ["Siobhan", "Shivaun"], "Zoë": ["Zoe"], "Chloé": ["Chloe"], "Sinéad": ["Sinead"],
    "Róisín": ["Roisin"], "Ciarán": ["Ciaran", "Kieran"], "Aisha": ["Ayesha", "Aysha"], "Ayesha": ["Aisha"],
    "Sarah": ["Sara"], "Hannah": ["Hanna"], "Jean-Luc": ["Jean Luc", "Jeanluc"], "Anne-Marie": ["Anne Marie", "Annmarie"],
    "Smith": ["Smyth"], "Thompson": ["Thomson"], "Thomson": ["Thompson"], "Davies": ["Davis"], "Clarke": ["Clark"],
    "McDonald": ["MacDonald", "Mcdonald"], "O'Brien": ["OBrien", "O Brien", "O'Brian"], "O'Connor": ["OConnor", "O'Conner"],
    "O'Sullivan": ["OSullivan"], "O'Neill": ["O'Neil", "ONeill"], "Hussain": ["Hussein", "Husain"],
    "Ahmed": ["Ahmad"], "Begum": ["Begam"], "Rahman": ["Rehman"], "Wiśniewska": ["Wisniewska"], "Wójcik": ["Wojcik"],
    "Dvořák": ["Dvorak"], "Horváth": ["Horvath"], "Zieliński": ["Zielinski"], "Nguyen": ["Nguyễn", "Ngyuen"],
    "Wong": ["Wang"], "Abdullah": ["Abdulla"], "Mohamed": ["Mohammed"], "Paweł": ["Pawel"], "Małgorzata": ["Malgorzata"],
}

STREETS = [
    "High Street", "Church Road", "Station Road", "Victoria Road", "Mill Lane", "Park Avenue", "Queen's Road",
    "St Mary's Close", "Albert Terrace", "Chapel Street", "Orchard Way", "Kingsway", "The Crescent", "Moor Lane",
    "Castle View", "Harbour Walk", "Northfield Drive", "Riverside Court", "Canal Side", "Beech Grove",
]
WARD_NAMES = [
    "Riverside", "Castle", "Harbour", "Northfield", "St Anne's", "Moor End", "Kingsway", "Old Town", "Parkside", "Wolds",
]

# --- Hospital (SUS/APC-like) -------------------------------------------------
# Admission method (NHS Data Dictionary): elective 11-13, emergency 21-28, maternity 31.
ADMISSION_METHODS_EMERGENCY = ["21", "22", "23", "24", "28"]  # 21 A&E, 22 GP, 23 bed bureau, 24 clinic, 28 other
ADMISSION_METHODS_ELECTIVE = ["11", "12", "13"]  # waiting list, booked, planned
ADMISSION_METHOD_MATERNITY = "31"
# Discharge destination (NHS Data Dictionary).
DISCHARGE_HOME = "19"  # usual place of residence
DISCHARGE_TEMPORARY = "29"
DISCHARGE_CARE_HOME = "54"  # NHS-run care home
DISCHARGE_LA_RESIDENTIAL = "65"
DISCHARGE_NON_NHS_CARE_HOME = "85"
DISCHARGE_OTHER_HOSPITAL = "51"
DISCHARGE_DIED = "79"
# ICD-10 primary diagnoses by the kind of admission that tends to carry them.
ICD10_FRAIL_EMERGENCY = ["R296", "W19X", "J181", "N390", "J441", "I500", "R410", "S7200", "E86X", "L031"]
ICD10_ADULT_EMERGENCY = ["R072", "R104", "K359", "J189", "I214", "K291", "N390", "T391", "R55X", "G409"]
ICD10_CHILD_EMERGENCY = ["J069", "J210", "A099", "R509", "J45X", "S525"]
ICD10_ELECTIVE = ["H251", "M171", "M161", "K802", "C509", "K409", "N400", "Z511", "C189", "I251"]
ICD10_MATERNITY = ["O800", "O820", "O702", "O342"]
TREATMENT_SITES = ["RLK01", "RLK02"]  # the place's acute trust, two sites

# --- A&E (ECDS-like) -----------------------------------------------------------
AE_ARRIVAL_MODES = ["1", "2"]  # 1 ambulance, 2 other
AE_DISCHARGE_DESTINATIONS = ["306689006", "306706006", "1066331000000109", "183919006"]
# SNOMED CT: discharge home, to ward (admitted), to community team, to care home
AE_ADMITTED = "306706006"
AE_CHIEF_COMPLAINTS = [
    "Fall", "Chest pain", "Shortness of breath", "Abdominal pain", "Confusion", "Limb injury", "Fever",
    "Head injury", "Collapse", "Mental health crisis", "Urinary symptoms", "Allergic reaction",
]
AE_ACUITY = ["1", "2", "3", "4", "5"]  # Manchester triage category

# --- Community services (CSDS-like) ---------------------------------------------
COMMUNITY_TEAMS = [
    "DISTRICT_NURSING", "COMMUNITY_MATRON", "PHYSIOTHERAPY", "OCCUPATIONAL_THERAPY", "PODIATRY",
    "RAPID_RESPONSE", "HEALTH_VISITING", "SCHOOL_NURSING", "FALLS_SERVICE",
]
CONTACT_LOCATIONS = ["HOME", "CLINIC", "CARE_HOME", "TELEPHONE"]
ATTENDANCE = ["5", "6", "7", "2"]  # attended on time, attended late, arrived late not seen, cancelled by patient

# --- Adult social care (CLD-shaped) ----------------------------------------------
ASC_SERVICE_TYPES = ["HOME_CARE", "RESIDENTIAL", "NURSING", "REABLEMENT", "DAY_CARE", "DIRECT_PAYMENT"]
ASC_ROUTES = ["HOSPITAL_DISCHARGE", "COMMUNITY", "SELF_FUNDER", "PRISON", "SAFEGUARDING"]
ASC_SUPPORT_REASONS = [
    "PHYSICAL_PERSONAL_CARE", "PHYSICAL_ACCESS_MOBILITY", "MEMORY_COGNITION", "MENTAL_HEALTH",
    "LEARNING_DISABILITY", "SENSORY", "SOCIAL_SUPPORT",
]
ASC_OUTCOMES = ["LONG_TERM_SUPPORT", "SHORT_TERM_SUPPORT", "UNIVERSAL_SERVICES", "NO_SERVICES", "ONGOING"]

# --- Housing (H-CLIC-like) ----------------------------------------------------
HOUSING_DUTIES = ["PREVENTION", "RELIEF", "MAIN"]
HOUSING_REASONS = [
    "END_OF_PRIVATE_TENANCY", "FAMILY_FRIENDS_NO_LONGER_WILLING", "DOMESTIC_ABUSE", "RELATIONSHIP_BREAKDOWN",
    "EVICTION_SOCIAL_RENT", "LEFT_INSTITUTION", "OTHER",
]
HOUSING_SUPPORT_NEEDS = ["NONE", "MENTAL_HEALTH", "PHYSICAL_ILL_HEALTH", "OLD_AGE", "DRUG_ALCOHOL", "YOUNG_PERSON"]
HOUSING_OUTCOMES = ["SECURED_EXISTING", "SECURED_ALTERNATIVE", "CONTACT_LOST", "DUTY_ENDED_OTHER", "ONGOING"]
# fmt: on
