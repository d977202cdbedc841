/**
 * @file base.c  Slice helpers.
 */
#include "base/base.h"

#include <errno.h>
#include <string.h>

sip_str sip_str_c(const char *s)
{
	sip_str r = {s, s ? strlen(s) : 0};
	return r;
}

bool sip_str_eq(sip_str a, sip_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool sip_str_ieq(sip_str a, sip_str b)
{
	if (a.len != b.len)
		return false;
	for (size_t i = 0; i < a.len; i++) {
		if (sip_lower(a.p[i]) != sip_lower(b.p[i]))
			return false;
	}
	return true;
}

bool sip_str_ieq_c(sip_str a, const char *c)
{
	return sip_str_ieq(a, sip_str_c(c));
}

static bool is_lws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

sip_str sip_str_trim(sip_str s)
{
	while (s.len > 0 && is_lws(s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && is_lws(s.p[s.len - 1]))
		s.len--;
	return s;
}

sip_str sip_str_sub(sip_str s, size_t from, size_t end)
{
	if (end > s.len)
		end = s.len;
	if (from > end)
		from = end;
	sip_str r = {s.p + from, end - from};
	return r;
}

int sip_str_to_u64(sip_str s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s.len == 0)
		return -EINVAL;
	for (size_t i = 0; i < s.len; i++) {
		unsigned d = (unsigned char)s.p[i] - '0';
		if (d > 9)
			return -EINVAL;
		if (v > (max - d) / 10) {
			/* keep scanning so that "12x" is EINVAL, not ERANGE */
			for (size_t j = i + 1; j < s.len; j++) {
				if ((unsigned char)s.p[j] - '0' > 9)
					return -EINVAL;
			}
			return -ERANGE;
		}
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

#define T SIP_CC_TOKEN
#define D (SIP_CC_TOKEN | SIP_CC_DIGIT)
#define A (SIP_CC_TOKEN | SIP_CC_ALPHA)

const uint8_t sip_char_class[256] = {
	['!'] = T, ['%'] = T, ['\''] = T, ['*'] = T, ['+'] = T, ['-'] = T,
	['.'] = T, ['_'] = T, ['`'] = T,  ['~'] = T, ['0'] = D, ['1'] = D,
	['2'] = D, ['3'] = D, ['4'] = D,  ['5'] = D, ['6'] = D, ['7'] = D,
	['8'] = D, ['9'] = D, ['A'] = A,  ['B'] = A, ['C'] = A, ['D'] = A,
	['E'] = A, ['F'] = A, ['G'] = A,  ['H'] = A, ['I'] = A, ['J'] = A,
	['K'] = A, ['L'] = A, ['M'] = A,  ['N'] = A, ['O'] = A, ['P'] = A,
	['Q'] = A, ['R'] = A, ['S'] = A,  ['T'] = A, ['U'] = A, ['V'] = A,
	['W'] = A, ['X'] = A, ['Y'] = A,  ['Z'] = A, ['a'] = A, ['b'] = A,
	['c'] = A, ['d'] = A, ['e'] = A,  ['f'] = A, ['g'] = A, ['h'] = A,
	['i'] = A, ['j'] = A, ['k'] = A,  ['l'] = A, ['m'] = A, ['n'] = A,
	['o'] = A, ['p'] = A, ['q'] = A,  ['r'] = A, ['s'] = A, ['t'] = A,
	['u'] = A, ['v'] = A, ['w'] = A,  ['x'] = A, ['y'] = A, ['z'] = A,
};

#undef T
#undef D
#undef A
