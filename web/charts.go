package web

import (
	"math"
	"strconv"
	"strings"
)

// Charts are SVG drawn here, from numbers only: the labels are this
// package's or dates, and still go through the escaping writer.

// series is one colour's values, one per day.
type series struct {
	Name   string
	Colour string
	Values []float64
}

const (
	chartW, chartH = 480, 200
	padL, padB     = 44, 24
)

// barChart stacks series per day; limit, when positive, is drawn as a line
// (a budget).
func barChart(title string, days []string, stack []series, limit float64) string {
	top := limit
	for i := range days {
		sum := 0.0
		for _, s := range stack {
			sum += s.Values[i]
		}
		top = math.Max(top, sum)
	}
	top = niceTop(top)
	var d doc
	svgHead(&d, title, top)
	w := float64(chartW-padL) / float64(max(len(days), 1))
	for i := range days {
		y := float64(chartH - padB)
		for _, s := range stack {
			h := s.Values[i] / top * float64(chartH-padB-8)
			if h <= 0 {
				continue
			}
			y -= h
			d.f(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s %s: %s</title></rect>`,
				num(float64(padL)+float64(i)*w+1), num(y), num(math.Max(w-2, 1)), num(h), s.Colour, days[i], s.Name, num(s.Values[i]))
		}
	}
	if limit > 0 {
		y := float64(chartH-padB) - limit/top*float64(chartH-padB-8)
		d.f(`<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#cf222e" stroke-dasharray="4 3"><title>budget %s</title></line>`, padL, num(y), chartW, num(y), num(limit))
	}
	svgFoot(&d, days, stack)
	return d.String()
}

// lineChart draws each series as a line over the days; NaN is no value.
func lineChart(title string, days []string, lines []series) string {
	top := 0.0
	for _, s := range lines {
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				top = math.Max(top, v)
			}
		}
	}
	top = niceTop(top)
	var d doc
	svgHead(&d, title, top)
	w := float64(chartW-padL) / float64(max(len(days), 1))
	for _, s := range lines {
		var pts []string
		for i, v := range s.Values {
			if math.IsNaN(v) {
				continue
			}
			x, y := float64(padL)+(float64(i)+0.5)*w, float64(chartH-padB)-v/top*float64(chartH-padB-8)
			pts = append(pts, num(x)+","+num(y))
			d.f(`<circle cx="%s" cy="%s" r="2.5" fill="%s"><title>%s %s: %s</title></circle>`, num(x), num(y), s.Colour, days[i], s.Name, num(v))
		}
		if len(pts) > 1 {
			d.f(`<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`, strings.Join(pts, " "), s.Colour)
		}
	}
	svgFoot(&d, days, lines)
	return d.String()
}

func svgHead(d *doc, title string, top float64) {
	d.f(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="%s">`, chartW, chartH+18, title)
	for _, frac := range []float64{0, 0.5, 1} {
		y := float64(chartH-padB) - frac*float64(chartH-padB-8)
		d.f(`<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#d0d7de"/><text x="%d" y="%s" font-size="10" text-anchor="end" fill="#59636e">%s</text>`,
			padL, num(y), chartW, num(y), padL-4, num(y+3), num(frac*top))
	}
}

func svgFoot(d *doc, days []string, ss []series) {
	if n := len(days); n > 0 {
		d.f(`<text x="%d" y="%d" font-size="10" fill="#59636e">%s</text><text x="%d" y="%d" font-size="10" text-anchor="end" fill="#59636e">%s</text>`,
			padL, chartH-padB+14, days[0], chartW, chartH-padB+14, days[n-1])
	}
	x := padL
	for _, s := range ss {
		d.f(`<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" font-size="11">%s</text>`, x, chartH+6, s.Colour, x+14, chartH+15, s.Name)
		x += 20 + 7*len(s.Name)
	}
	d.raw("</svg>")
}

// niceTop rounds a chart's top up to 1, 2 or 5 times a power of ten.
func niceTop(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func num(v float64) string { return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64) }
