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

# Family names per pool, most frequent first. A name's share falls with its
# rank as in Britain's surname counts (Smith about 1.3% of people, the 50th
# name about 0.1%); see jobs/generate/names.py for the shapes drawn from these.
FAMILY_NAMES: dict[str, list[str]] = {
    "british": [
        "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson", "Wright",
        "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke",
        "Harris", "Lewis", "Martin", "Cooper", "Hughes", "Edwards", "Turner", "Hill", "Moore", "Ward",
        "Morris", "Mitchell", "Parker", "Shaw", "Lee", "Baker", "Ellis", "Graham", "Atkinson", "McDonald",
        "Smith-Jones", "Harper-Lee", "Fox", "Thomson", "Campbell", "Bell", "Stewart", "Ford", "Dixon", "Webb",
    ],
    "irish": ["Murphy", "Kelly", "O'Brien", "O'Connor", "Byrne", "Ryan", "O'Sullivan", "Walsh", "McCarthy", "Doyle",
              "O'Neill", "Gallagher", "Brennan", "Burke", "Collins", "Daly", "Dunne", "Fitzgerald", "Flynn", "Hayes",
              "Healy", "Kavanagh", "Kennedy", "Lynch", "Maguire", "Moran", "Nolan", "Power", "Quinn", "Whelan",
              "Boyle", "Brady", "Carroll", "Cullen", "Doherty", "Duffy", "Egan", "Farrell", "Foley", "Hogan",
              "Keane", "Kearney", "Mulligan", "Sheehan", "Ní Bhriain", "Ó Súilleabháin"],
    "eastern_european": ["Nowak", "Kowalski", "Wiśniewska", "Wójcik", "Kowalczyk", "Popescu", "Ionescu", "Kazlauskas",
                         "Horváth", "Novák", "Dvořák", "Lewandowski", "Zieliński", "Stan", "Kamińska", "Szymański",
                         "Woźniak", "Dąbrowski", "Kozłowska", "Mazur", "Krawczyk", "Kaczmarek", "Popa", "Radu",
                         "Dumitru", "Stoica", "Petrauskas", "Jankauskas", "Nagy", "Tóth", "Svoboda", "Kovács"],
    "south_asian_muslim": ["Khan", "Begum", "Ahmed", "Hussain", "Ali", "Akhtar", "Iqbal", "Rahman", "Mahmood",
                           "Bibi", "Islam", "Uddin", "Miah", "Shah", "Khatun", "Hossain", "Chowdhury", "Malik",
                           "Butt", "Raza", "Rashid", "Javed", "Aslam", "Anwar", "Riaz", "Saleem", "Sadiq",
                           "Yousaf", "Zaman", "Qureshi", "Chaudhry", "Mirza", "Siddiqui", "Sheikh", "Nawaz",
                           "Arshad", "Ashraf", "Bashir", "Rafiq", "Shafiq", "Younis", "Zafar", "Hanif", "Latif",
                           "Majid", "Nadeem", "Pervez", "Sabir", "Tahir", "Waheed", "Zahid", "Haque", "Alam",
                           "Karim", "Sarker", "Sultana", "Akter", "Hoque", "Talukder", "Mazumder"],
    "south_asian_indian": ["Patel", "Singh", "Kaur", "Sharma", "Gill", "Mistry", "Sandhu", "Kumar", "Shah", "Desai",
                           "Parmar", "Chauhan", "Mehta", "Joshi", "Gupta", "Verma", "Rao", "Reddy", "Nair", "Iyer",
                           "Pillai", "Menon", "Bhatt", "Trivedi", "Pandya", "Solanki", "Rathod", "Chavda", "Dhillon",
                           "Grewal", "Sidhu", "Bains", "Johal", "Atwal", "Bassi", "Virdi", "Sangha", "Kalsi",
                           "Sahota", "Thandi", "Randhawa", "Cheema", "Banerjee", "Chatterjee", "Mukherjee", "Das",
                           "Bose", "Ghosh", "Sen", "Dutta", "Kapoor", "Khanna", "Malhotra", "Chopra", "Arora",
                           "Bhatia", "Sethi", "Anand", "Lakhani", "Vekaria"],
    "west_african": ["Okafor", "Adeyemi", "Mensah", "Okonkwo", "Adebayo", "Boateng", "Owusu", "Nwosu", "Eze",
                     "Asante", "Abubakar", "Adeleke", "Afolabi", "Agyeman", "Akande", "Amoah", "Ansah", "Appiah",
                     "Bello", "Danso", "Darko", "Obi", "Okeke", "Okoro", "Opoku", "Osei", "Sarpong", "Ugwu",
                     "Yeboah", "Adjei", "Acheampong", "Frimpong", "Ofori", "Amadi", "Chukwu", "Okoye", "Ibe",
                     "Nnamdi", "Onyeka", "Oyelaran"],
    "chinese": ["Chen", "Wang", "Li", "Zhang", "Liu", "Wong", "Lam", "Cheung", "Ng", "Nguyen", "Chan", "Lee", "Ho",
                "Leung", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Zhu", "Hu", "Guo", "Lin",
                "Tang", "Tsang", "Yip", "Kwok", "Lau", "Fung", "Tam", "Mak", "Choi", "Tse", "Yeung", "Chow", "Chu",
                "Poon", "Lo", "Siu", "Cheng", "Hui", "Kwan", "Yuen", "Tran", "Pham", "Le", "Vu"],
    "arabic": ["Hassan", "Ibrahim", "Abdullah", "Mohamed", "Al-Sayed", "El-Amin", "Saleh", "Haddad", "Mahmoud",
               "Mustafa", "Yousef", "Khalil", "Nasser", "Hamdan", "Mansour", "Farah", "Aziz", "Salem", "Sharif",
               "Qasim", "Said", "Osman", "Omar", "Abbas", "Jaber", "Karam", "Najjar", "Khoury", "Saad", "Issa",
               "Awad", "Darwish", "Hijazi", "Al-Masri", "Al-Hashimi", "El-Sheikh", "Bakr"],
}

# The share of its pool the commonest family name holds, for pools with a
# long tail below (Smith: about 1.3% of people in England and Wales).
FAMILY_NAME_TOP_SHARE: dict[str, float] = {
    "british": 0.013, "irish": 0.03, "eastern_european": 0.02, "south_asian_muslim": 0.08,
    "west_african": 0.03, "arabic": 0.04,
}

# The long tail: family names made from the parts of names each pool's
# naming tradition joins (Ash+worth, Mac+Namara, Ade+wale, Kowal+czyk).
# Every pair of a group's prefixes and suffixes is a name; together they give
# a city of 1M people its thousands of rare names, as a real one has.
FAMILY_NAME_PARTS: dict[str, list[tuple[list[str], list[str]]]] = {
    "british": [(
        ["Ash", "Ather", "Bar", "Black", "Brad", "Bram", "Brom", "Brook", "Bur", "Cald", "Carl", "Chad", "Chat",
         "Cliff", "Cole", "Cran", "Dal", "Dar", "Den", "Dun", "Eg", "Elm", "Fair", "Farn", "Fen", "Gar", "Glad",
         "Gold", "Gres", "Hal", "Ham", "Hart", "Hay", "Heath", "Hol", "Hor", "Kel", "Kings", "Lang", "Lath",
         "Lid", "Lock", "Mal", "Mar", "Mid", "Mor", "New", "Nor", "Oak", "Pen", "Pick", "Rad", "Ram", "Red",
         "Ros", "Rush", "Sand", "Shel", "Stan", "Stock", "Stone", "Sut", "Thorn", "Tun", "Wad", "Wal", "Wat",
         "Wel", "West", "Whit", "Wil", "Win", "Wolver", "Wray", "York"],
        ["ley", "ton", "well", "field", "wood", "worth", "ford", "by", "ham", "combe", "more", "shaw", "croft",
         "hurst", "bury", "stone", "wick", "thorpe", "den", "hill", "dale", "cott", "land", "bridge", "brook",
         "man", "er", "son", "gate", "low"],
    )],
    "irish": [
        (["Mc", "Mac"], ["Bride", "Cann", "Dermott", "Donagh", "Dowell", "Elroy", "Evoy", "Fadden", "Garry", "Gee",
                         "Govern", "Gowan", "Grath", "Guire", "Hale", "Hugh", "Intyre", "Kay", "Keever", "Kenna",
                         "Keown", "Laughlin", "Mahon", "Manus", "Namara", "Nulty", "Quade", "Shane", "Sweeney",
                         "Tiernan", "Ardle", "Cormack"]),
        (["O'"], ["Connell", "Donovan", "Driscoll", "Dwyer", "Flaherty", "Gorman", "Halloran", "Hara", "Keeffe",
                  "Leary", "Mahony", "Malley", "Rourke", "Shea", "Toole", "Callaghan", "Reilly", "Dea", "Dowd",
                  "Grady", "Hanlon", "Kane", "Meara"]),
    ],
    "eastern_european": [
        (["Kowal", "Lewan", "Dąbrow", "Kamin", "Zielin", "Szyman", "Kozłow", "Jankow", "Kwiatkow", "Piotrow",
          "Grabow", "Pawłow", "Michal", "Majew", "Olszew", "Rutkow", "Sikor", "Walczak", "Wróbl", "Ostrow",
          "Czarn", "Biel", "Sobcz", "Adam", "Zawadz"], ["ski", "ska", "czyk", "ak", "ewicz", "iak"]),
        (["Pop", "Ion", "Rad", "Dumitr", "Stoic", "Gheorgh", "Constantin", "Marin", "Tudor", "Flor", "Munt",
          "Vasil", "Nistor", "Dragom", "Bucur"], ["escu", "eanu", "ache", "ovici"]),
        (["Petr", "Jank", "Kazl", "Stank", "Vasil", "Žuk", "Paul", "Balt", "Urb", "Rimk"],
         ["auskas", "auskienė", "evičius", "onis"]),
    ],
    "south_asian_muslim": [
        (["Zia", "Nasir", "Shams", "Moin", "Jalal", "Kamal", "Salah", "Najm", "Fakhr", "Sharf", "Aziz", "Habib",
          "Hafiz", "Jamal", "Nur", "Siraj", "Zahir", "Imtiaz", "Ikram", "Ehsan", "Rafi", "Shafi", "Naseer",
          "Mujib", "Azhar"], ["uddin", "ullah", " Ahmed", " Ali", " Hussain", " Khan", " Miah"]),
    ],
    "south_asian_indian": [],
    "west_african": [
        (["Ade", "Ola", "Olu", "Oluwa", "Ayo", "Ogun", "Akin", "Fola", "Bola", "Kola", "Tola", "Shola"],
         ["yemi", "wale", "bayo", "tunde", "kunle", "dele", "seun", "lade", "yinka", "jide", "dipo", "femi"]),
        (["Kwa", "Kof", "Ya", "Kwab", "Ko", "Ak", "Ef", "Ops", "Am"], ["ku", "ena", "si", "pong", "teng", "ye"]),
    ],
    "chinese": [],
    "arabic": [
        (["Al-", "El-"], ["Masri", "Hashimi", "Tamimi", "Khatib", "Rawi", "Jabouri", "Sayegh", "Shami", "Halabi",
                          "Baghdadi", "Najjar", "Zein", "Ansari", "Qureshi", "Amin", "Hakim", "Rifai", "Shammari"]),
    ],
}

# Given names per pool and sex, commonest first (drawn with a gentle rank weight).
GIVEN_NAMES: dict[str, dict[str, list[str]]] = {
    "british": {
        "F": ["Olivia", "Amelia", "Isla", "Ava", "Mia", "Grace", "Sophia", "Lily", "Freya", "Emily", "Margaret",
              "Patricia", "Susan", "Mary", "Joan", "Elizabeth", "Sarah", "Catherine", "Jennifer", "Zoë", "Chloé",
              "Anne-Marie", "Rebecca", "Jessica", "Hannah", "Dorothy", "Kathleen", "Deborah", "Jacqueline",
              "Karen", "Julie", "Helen", "Claire", "Nicola", "Emma", "Laura", "Lisa", "Amanda", "Michelle",
              "Joanne", "Rachel", "Victoria", "Charlotte", "Lucy", "Sophie", "Katie", "Lauren", "Megan", "Ella",
              "Evie", "Poppy", "Ruby", "Florence", "Ivy", "Rosie", "Isabella", "Daisy", "Phoebe", "Matilda",
              "Alice", "Jean", "Barbara", "Sheila", "Brenda", "Christine", "Linda", "Janet", "Valerie", "Pauline",
              "Carol", "Gillian", "Wendy", "Tracey", "Angela", "Dawn", "Kelly", "Gemma", "Hayley", "Natalie",
              "Stacey", "Danielle", "Amy", "Holly", "Jade", "Abigail", "Eleanor", "Harriet", "Imogen", "Niamh",
              "Beatrice", "Edith", "Elsie", "Maud", "Winifred"],
        "M": ["Oliver", "George", "Noah", "Arthur", "Leo", "Harry", "Oscar", "Jack", "John", "David", "Michael",
              "Peter", "Robert", "James", "William", "Thomas", "Daniel", "Adam", "Stephen", "Christopher",
              "Richard", "Anthony", "Jonathan", "Kenneth", "Jean-Luc", "Matthew", "Joseph", "Samuel",
              "Paul", "Mark", "Andrew", "Ian", "Gary", "Steven", "Kevin", "Lee", "Craig", "Darren", "Wayne",
              "Neil", "Simon", "Martin", "Philip", "Alan", "Brian", "Keith", "Colin", "Graham", "Trevor",
              "Roy", "Dennis", "Derek", "Ronald", "Frank", "Albert", "Stanley", "Leonard", "Ernest", "Harold",
              "Benjamin", "Luke", "Ryan", "Liam", "Connor", "Callum", "Jake", "Lewis", "Alexander", "Ethan",
              "Jacob", "Charlie", "Alfie", "Freddie", "Theo", "Henry", "Archie", "Edward", "Max", "Finley",
              "Toby", "Reece", "Jordan", "Nathan", "Dean", "Scott", "Stuart", "Barry", "Clive", "Nigel",
              "Gordon", "Malcolm", "Russell", "Terence", "Raymond", "Sidney"],
    },
    "irish": {
        "F": ["Siobhán", "Aoife", "Niamh", "Róisín", "Mary", "Bridget", "Caoimhe", "Sinéad", "Orla", "Catherine",
              "Ciara", "Saoirse", "Aisling", "Clodagh", "Gráinne", "Maeve", "Deirdre", "Eileen", "Nuala",
              "Máire", "Úna", "Fionnuala", "Aine", "Emer"],
        "M": ["Seán", "Patrick", "Ciarán", "Michael", "Liam", "Eoin", "Declan", "Padraig", "Conor", "James",
              "Cillian", "Oisín", "Darragh", "Niall", "Colm", "Dermot", "Fergal", "Brendan", "Diarmuid",
              "Cathal", "Ronan", "Tadhg", "Donal", "Kieran"],
    },
    "eastern_european": {
        "F": ["Agnieszka", "Anna", "Katarzyna", "Małgorzata", "Ioana", "Elena", "Zuzana", "Jolanta", "Maria",
              "Magdalena", "Joanna", "Ewa", "Monika", "Aleksandra", "Natalia", "Andreea", "Alina", "Gabriela",
              "Ieva", "Rūta", "Jana", "Petra", "Kristina", "Oksana"],
        "M": ["Piotr", "Tomasz", "Krzysztof", "Andrei", "Mihai", "Jakub", "Lukas", "Marek", "Paweł",
              "Michał", "Marcin", "Łukasz", "Kamil", "Adrian", "Bartosz", "Ionuț", "Florin", "Cristian",
              "Mantas", "Tomas", "Jonas", "Petr", "Martin", "Dmytro"],
    },
    "south_asian_muslim": {
        "F": ["Fatima", "Aisha", "Ayesha", "Maryam", "Zainab", "Nadia", "Amina", "Rukhsana", "Shazia", "Hafsa",
              "Sadia", "Samina", "Nasreen", "Parveen", "Shabana", "Farzana", "Rubina", "Sumaiya", "Tahmina",
              "Yasmin", "Noreen", "Iqra", "Khadija", "Safiya", "Halima", "Rabia"],
        "M": ["Muhammad", "Mohammed", "Ahmed", "Imran", "Bilal", "Hamza", "Tariq", "Abdul", "Zubair", "Usman",
              "Adnan", "Asif", "Faisal", "Haroon", "Irfan", "Kamran", "Nadeem", "Omar", "Rizwan", "Shahid",
              "Waqas", "Yasir", "Zeeshan", "Ibrahim", "Yusuf", "Abdullah"],
    },
    "south_asian_indian": {
        "F": ["Priya", "Anjali", "Harpreet", "Sunita", "Kiran", "Meera", "Pooja", "Simran", "Deepa", "Asha",
              "Neha", "Ritu", "Rupinder", "Jaspreet", "Manpreet", "Nisha", "Sonia", "Geeta", "Hema", "Kavita",
              "Lata", "Nirmala", "Divya", "Shreya"],
        "M": ["Raj", "Arjun", "Harjit", "Vikram", "Sanjay", "Amit", "Gurpreet", "Rahul", "Ravi", "Manjit",
              "Anil", "Ashok", "Deepak", "Jaswinder", "Kuldip", "Mahesh", "Nikhil", "Pradeep", "Rajesh",
              "Sunil", "Vijay", "Rohan", "Aarav", "Dev"],
    },
    "west_african": {
        "F": ["Chidinma", "Ngozi", "Abena", "Adaeze", "Folake", "Ama", "Blessing", "Esther", "Grace", "Precious",
              "Funmilayo", "Yetunde", "Akosua", "Efua", "Adwoa", "Chioma", "Nneka", "Oluwaseyi", "Temitope",
              "Comfort", "Patience", "Gifty"],
        "M": ["Chukwuemeka", "Kwame", "Oluwaseun", "Kofi", "Emmanuel", "Tunde", "Chinedu", "Samuel", "Yaw",
              "Kwabena", "Kwaku", "Femi", "Segun", "Obinna", "Ikenna", "Babajide", "Ayodele", "Daniel",
              "Prince", "Godwin", "Ebenezer", "Kojo"],
    },
    "chinese": {
        "F": ["Mei", "Xiaoling", "Yan", "Li Na", "Hui", "Ying", "Jing", "Wing", "Grace", "Xin", "Lan", "Fang",
              "Ling", "Yu", "Shu", "Jia", "Wai Man", "Suk Yee", "Amy", "Linh"],
        "M": ["Wei", "Jun", "Hao", "Ming", "Chi Keung", "Jian", "Kevin", "Tao", "Lei", "Bo", "Chen", "Yong",
              "Kai", "Long", "Wai Kit", "Ka Ho", "Man Kit", "Tony", "Minh", "Duc"],
    },
    "arabic": {
        "F": ["Layla", "Noor", "Yasmin", "Huda", "Rania", "Salma", "Mariam", "Fatima", "Hanan", "Lina", "Dina",
              "Amal", "Reem", "Sara", "Nour", "Samira", "Leila", "Amira"],
        "M": ["Omar", "Youssef", "Khalid", "Ali", "Hassan", "Karim", "Tariq", "Mohamed", "Ahmad", "Mahmoud",
              "Mustafa", "Ibrahim", "Sami", "Walid", "Nabil", "Faris", "Hamza", "Adel"],
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
