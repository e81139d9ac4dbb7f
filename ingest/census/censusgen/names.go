package censusgen

import (
	"strings"

	"anprsec/codfisc"
)

// Name lists for generated people: common Italian surnames and first names,
// a few with apostrophes, blanks and accents so that the readers of the
// workbooks meet them.
var (
	surnames = []string{
		"Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
		"Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Mancini", "Costa",
		"Giordano", "Rizzo", "Lombardi", "Moretti", "Barbieri", "Fontana", "Santoro", "Mariani",
		"Rinaldi", "Caruso", "Ferrara", "Galli", "Martini", "Leone", "Longo", "Gentile",
		"Martinelli", "Vitale", "Lombardo", "Serra", "Coppola", "De Santis", "D'Angelo", "Marchetti",
		"Parisi", "Villa", "Conte", "Ferraro", "Ferri", "Fabbri", "Bianco", "Marini",
		"Grasso", "Valentini", "Messina", "Sala", "De Angelis", "Gatti", "Pellegrini", "Palumbo",
		"Sanna", "Farina", "Rizzi", "Monti", "Cattaneo", "Morelli", "Amato", "Silvestri",
		"Mazza", "Testa", "Grassi", "Pellegrino", "Carbone", "Giuliani", "Benedetti", "Barone",
		"Rossetti", "Caputo", "Montanari", "Guerra", "Palmieri", "Bernardi", "Martino", "Fiore",
		"De Rosa", "Ferretti", "Bellini", "Basile", "Riva", "Donati", "Piras", "Vitali",
		"Battaglia", "Sartori", "Neri", "Costantini", "Milani", "Pagano", "Ruggiero", "Sorrentino",
		"D'Amico", "Orlando", "Damico", "Negri", "Fo", "Re", "Dell'Acqua", "Nicolò",
	}
	maleNames = []string{
		"Marco", "Giuseppe", "Giovanni", "Antonio", "Mario", "Luigi", "Francesco", "Angelo",
		"Vincenzo", "Pietro", "Salvatore", "Carlo", "Franco", "Domenico", "Bruno", "Paolo",
		"Michele", "Giorgio", "Aldo", "Sergio", "Luciano", "Stefano", "Roberto", "Andrea",
		"Alessandro", "Luca", "Matteo", "Lorenzo", "Davide", "Simone", "Federico", "Riccardo",
		"Nicolò", "Niccolò", "Gian Luca", "Pier Paolo", "Emanuele", "Fabio", "Massimo", "Ugo",
	}
	femaleNames = []string{
		"Maria", "Anna", "Giuseppina", "Rosa", "Angela", "Giovanna", "Teresa", "Lucia",
		"Carmela", "Caterina", "Francesca", "Antonietta", "Carla", "Elena", "Concetta", "Rita",
		"Margherita", "Franca", "Paola", "Giulia", "Sofia", "Aurora", "Alice", "Ginevra",
		"Emma", "Giorgia", "Greta", "Martina", "Chiara", "Sara", "Federica", "Valentina",
		"Anna Maria", "Maria Grazia", "Bea", "Eva", "Ilaria", "Noemi", "Beatrice", "Elisa",
	}
	// foreignBirthplaces are Belfiore codes of foreign countries.
	foreignBirthplaces = []string{"Z100", "Z110", "Z112", "Z129", "Z133", "Z210", "Z330", "Z600", "Z602"}
)

// letters returns the upper-case ASCII letters of s, accents removed.
func letters(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		case 'A' <= r && r <= 'Z':
			b.WriteRune(r)
		default:
			if base, ok := accents[r]; ok {
				b.WriteByte(base)
			}
		}
	}
	return b.String()
}

var accents = map[rune]byte{
	'à': 'A', 'á': 'A', 'è': 'E', 'é': 'E', 'ì': 'I', 'í': 'I', 'ò': 'O', 'ó': 'O', 'ù': 'U', 'ú': 'U',
	'À': 'A', 'È': 'E', 'É': 'E', 'Ì': 'I', 'Ò': 'O', 'Ù': 'U',
}

// MakeCF builds a valid codice fiscale; level > 0 applies omocodia to the
// last level digit positions, as the Agenzia delle Entrate does when a code
// is already taken.
func MakeCF(surname, name string, female bool, year, month, day int, belfiore string, level int) string {
	if female {
		day += 40
	}
	b := []byte(codfisc.SurnameLetters(surname) + codfisc.NameLetters(name))
	b = append(b, byte('0'+year%100/10), byte('0'+year%10), codfisc.MonthLetter(month),
		byte('0'+day/10), byte('0'+day%10))
	b = append(b, belfiore...)
	for _, i := range omocodiaOrder[:level] {
		b[i] = "LMNPQRSTUV"[b[i]-'0']
	}
	return string(b) + string(codfisc.CheckLetter(string(b)))
}

// omocodiaOrder lists the 0-based digit positions in the order omocodia
// replaces them: 15, 14, 13, 11, 10, 8, 7 (1-based).
var omocodiaOrder = []int{14, 13, 12, 10, 9, 7, 6}

// emailLocal returns a lower-case ASCII e-mail local part for a name.
func emailLocal(name string) string {
	return strings.ToLower(letters(name))
}
