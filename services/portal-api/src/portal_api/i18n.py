"""The portal's words in Norwegian Bokmål (the seed guide's; the default) and English; money formatting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from starlette.requests import Request

Lang = Literal["nb", "en"]
DEFAULT_LANG: Final[Lang] = "nb"
LANG_COOKIE: Final = "lang"
LANG_QUERY: Final = "lang"

_NB: dict[str, str] = {
    "site.skip": "Hopp til innhold",
    "nav.label": "Hovedmeny",
    "nav.home": "HJEM",
    "nav.subscription": "ABONNEMENT",
    "nav.terminal": "TERMINAL",
    "nav.support": "SUPPORT",
    "nav.contact": "KONTAKT OSS",
    "lang.other": "English",
    "lang.other.code": "en",
    "auth.sign_out": "Logg ut",
    "auth.signed_in_as": "Pålogget som {name}",
    "login.title": "Logg på mPort",
    "login.intro": "Logg på med jobbkontoen din for å se og endre mobilabonnementet ditt.",
    "login.use_work_account": "Bruk jobbkonto",
    "login.dev.title": "Utviklerinnlogging",
    "login.dev.note": "Kun i lokal modus: logg på som en av demobrukerne.",
    "login.dev.as": "Logg på som {name}",
    "login.dev.admin": "mPort administrator",
    "login.dev.self_service_off": "selvbetjening ikke aktivert",
    "login.failed.title": "Innloggingen mislyktes",
    "login.failed.not_configured": "Innlogging med jobbkonto er ikke satt opp for denne portalen ennå.",
    "login.failed.unknown_user": (
        "Vi fant ingen ansatt med e-postadressen {email} i mPort. Kontakt din mPort administrator."
    ),
    "login.failed.no_email": "Jobbkontoen din oppga ingen e-postadresse, så vi vet ikke hvem du er.",
    "login.failed.expired": (
        "Innloggingen tok for lang tid, eller ble startet i en annen fane eller nettleser. Prøv igjen."
    ),
    "login.failed.invalid_response": "Svaret fra innloggingstjenesten kunne ikke bekreftes. Prøv igjen.",
    "login.failed.provider_error": "Innloggingstjenesten avviste innloggingen ({detail}).",
    "login.failed.misconfigured": "Innloggingen er ikke riktig satt opp – kontakt mPort-administratoren.",
    "login.failed.unverified_email": (
        "Innloggingstjenesten har ikke bekreftet e-postadressen {email}, så vi kan ikke knytte jobbkontoen "
        "til en ansatt. Kontakt mPort-administratoren."
    ),
    "login.failed.account_taken": (
        "Den ansatte med e-postadressen {email} er allerede knyttet til en annen jobbkonto. "
        "Kontakt mPort-administratoren."
    ),
    "login.try_again": "Prøv igjen",
    "login.notice.signed_out": "Du er logget ut.",
    "login.notice.idle": (
        "Du ble logget ut fordi du ikke har vært aktiv på en stund. Logg på igjen for å fortsette."
    ),
    "login.notice.max_age": "Økten din er utløpt. Logg på igjen for å fortsette.",
    "login.notice.ended": "Økten din er avsluttet. Logg på igjen for å fortsette.",
    "home.title": "Hjem",
    "home.greeting": "Hei, {name}",
    "home.company": "Du har mobilabonnement gjennom {company}.",
    "home.to_subscription": "Gå til Abonnement",
    "home.to_orders": "Se Mine bestillinger",
    "sub.title": "Abonnement",
    "sub.number": "Telefonnummer",
    "sub.plan": "Abonnement",
    "sub.you_pay": "Du betaler",
    "sub.no_subscription": "Du har ikke noe mobilabonnement registrert i mPort.",
    "sub.box_label": "Selvbetjening",
    "sub.intro": (
        "Her kan du bestille tjenester og tillegg til ditt abonnement. "
        "Enkelte tjenester kan medføre lønnstrekk. Se bedriftens retningslinjer."
    ),
    "sub.policy_link": "(Policy)",
    "sub.not_active": "Selvbetjening er ikke aktivert for deg ennå. Bekreft telefonnummeret ditt først:",
    "sub.confirm_number": "Bekreft telefonnummer",
    "sub.row.plan": "Abonnement: {plan}",
    "sub.row.sims": "Mine SIM-kort",
    "sub.row.active": "Mine aktive tjenester",
    "sub.row.services": "Tilgjengelige tjenester",
    "sub.row.plans": "Tilgjengelige abonnementer",
    "sub.active.empty": "Ingen aktive tjenester.",
    "sub.my_orders": "Mine bestillinger",
    "sim.main": "Sim hovedkort",
    "sim.label.Sim hovedkort": "Sim hovedkort",
    "sim.label.Nytt SIM (sendt)": "Nytt SIM (sendt)",
    "sim.status.active": "Aktiv",
    "sim.status.ordered": "Sendt, ikke aktivert",
    "sim.icc": "ICC-nummer",
    "sim.icc.none": "ICC ikke registrert",
    "sim.icc.hint": "19–20 siffer, trykket på SIM-kortet.",
    "sim.icc.length": "ICC-nummeret må være 19 eller 20 siffer.",
    "sim.icc.check": "ICC-nummeret har feil kontrollsiffer. Sjekk at du har skrevet det riktig.",
    "sim.delivery_name": "Navn på mottaker",
    "sim.delivery_address": "Leveringsadresse",
    "sim.required": "Fyll ut feltet.",
    "sim.activate": "Aktiver nytt SIM",
    "sim.order": "Bestill SIM",
    "col.product": "Produkt",
    "col.price": "Pris",
    "col.you_pay": "Du betaler",
    "charge.deduction": "Lønnstrekk: {amount}",
    "charge.per_month": "{amount} per måned",
    "charge.employer": "Dekkes av arbeidsgiver",
    "product.not_allowed": "Ikke tillatt etter bedriftens retningslinjer",
    "product.norway_only": "Dette gjelder KUN data innenfor Norge",
    "product.last_failed": "Siste bestilling feilet: {reason}",
    "product.expected": "Forventet ferdig {date}",
    "plan.current": "Ditt abonnement",
    "button.order": "Bestill",
    "button.ordered": "Bestilt",
    "button.ordering": "Bestiller …",
    "button.with_carrier": "Under behandling hos operatøren",
    "dialog.title": "Bekreft bestilling",
    "dialog.product": "Produkt:",
    "dialog.msisdn": "Legges til følgende msisdn:",
    "dialog.deduction": "Dette medfører lønnstrekk: {amount}.",
    "dialog.ok": "Ok",
    "end.title": "Avslutt tjeneste",
    "end.question": (
        "Vil du avslutte {name}? Tjenesten fjernes fra abonnementet ditt, og lønnstrekket for den "
        "stopper fra neste lønnsperiode."
    ),
    "end.button": "Avslutt",
    "end.ending": "Avsluttes …",
    "end.received": "Avslutningen av {name} er mottatt.",
    "end.completed": "{name} er avsluttet.",
    "end.failed": "Avslutningen av {name} feilet: {reason}",
    "dialog.cancel": "Kanseller",
    "order.received": "Bestillingen av {name} er mottatt.",
    "order.completed": "{name} er bestilt.",
    "order.failed": "Bestillingen av {name} feilet: {reason}",
    "order.failed_short": "Bestillingen feilet: {reason}",
    "order.with_carrier": "Bestillingen av {name} er under behandling hos operatøren.",
    "order.with_carrier_expected": (
        "Bestillingen av {name} er under behandling hos operatøren, forventet ferdig {date}."
    ),
    "order.expected": "forventet ferdig {date}",
    "failure.carrier_deadline_passed": (
        "Operatøren ble ikke ferdig med bestillingen i tide. Du blir ikke trukket noe."
    ),
    "failure.carrier_unreachable": "Vi fikk ikke kontakt med operatøren i tide. Du blir ikke trukket noe.",
    "status.received": "Mottatt",
    "status.submitted": "Under behandling hos operatøren",
    "status.completed": "Bestilt",
    "status.failed": "Feilet",
    "verify.title": "Bekreft telefonnummer for {name}",
    "verify.registered": "Registrert telefonnummer",
    "verify.intro": "Klikk på knappen nedenfor for å få tilsendt engangskode på SMS for å bekrefte",
    "verify.send": "Send engangskode på SMS",
    "verify.send_again": "Send ny engangskode på SMS",
    "verify.wrong_number": "Hvis nummeret er feil, vennligst kontakt din mPort administrator.",
    "verify.code_label": "Legg inn engangskode mottatt på SMS",
    "verify.code_hint": "6 siffer. Koden gjelder til kl. {time}.",
    "verify.confirm": "Bekreft telefonnummer",
    "verify.confirmed": "Ditt telefonnummer er bekreftet.",
    "verify.ok": "Ok",
    "verify.not_allowed_by_admin": (
        "Selvbetjening er slått av for deg av din mPort administrator, "
        "så boksen for selvbetjening vises ikke."
    ),
    "verify.delivery.requested": "Engangskoden sendes …",
    "verify.delivery.sent": "SMS-en med engangskoden er sendt.",
    "verify.delivery.delivered": "SMS-en med engangskoden er levert til telefonen din.",
    "verify.delivery.failed": "SMS-en med engangskoden kom ikke fram: {reason}",
    "verify.failed.rejected": "SMS-tjenesten avviste meldingen.",
    "verify.failed.undelivered": "meldingen kunne ikke leveres til telefonen.",
    "verify.failed.expired": "koden gikk ut før SMS-en kunne sendes.",
    "verify.failed.not_allowed": "vi sender ikke SMS til nummer i dette landet.",
    "verify.failed.ask_again": "Be om en ny kode, eller kontakt din mPort administrator.",
    "verify.tries_left": "{tries} forsøk igjen.",
    "verify.local": "Lokal modus: SMS-ene som «sendes» kan leses hos SMS-simulatoren:",
    "verify.problem.wrong_code": "Feil kode. Du har {tries} forsøk igjen med denne koden.",
    "verify.problem.too_many_tries": (
        "Feil kode for mange ganger: koden virker ikke lenger. Be om en ny kode."
    ),
    "verify.problem.expired": "Koden er utløpt. Be om en ny kode.",
    "verify.problem.replaced": "Det er sendt en nyere kode. Bruk den nyeste koden.",
    "verify.problem.dead": "Koden er tastet feil for mange ganger. Be om en ny kode.",
    "verify.problem.used": "Koden er allerede brukt.",
    "verify.problem.number_changed": (
        "Telefonnummeret ditt er endret siden koden ble sendt. Be om en ny kode."
    ),
    "verify.problem.too_many_codes": "Du har bedt om for mange koder. Prøv igjen om {wait}.",
    "verify.problem.locked": (
        "For mange feil koder på rad. Din mPort administrator må låse opp bekreftelsen for deg."
    ),
    "verify.problem.country": (
        "Vi sender ikke SMS til nummer i dette landet. Kontakt din mPort administrator."
    ),
    "verify.problem.budget": (
        "Bedriften har brukt opp dagens kvote av SMS-koder. Prøv igjen om {wait}, eller kontakt din "
        "mPort administrator."
    ),
    "verify.problem.busy": "En kode er allerede på vei. Bruk koden som kommer.",
    "verify.problem.generic": "Noe gikk galt. Prøv igjen.",
    "orders.title": "Mine bestillinger",
    "orders.ending": "Avslutt {name}",
    "orders.empty": "Du har ingen bestillinger ennå.",
    "orders.col.date": "Dato",
    "orders.col.product": "Produkt",
    "orders.col.status": "Status",
    "orders.col.charge": "Lønnstrekk",
    "orders.none": "–",
    "orders.older": "Eldre bestillinger",
    "orders.newest": "Nyeste bestillinger",
    "orders.not_found": "Fant ingen slik bestilling blant dine bestillinger.",
    "orders.pages": "Flere bestillinger",
    "orders.bad_page": "Denne lenken til bestillingene dine er ikke gyldig (lenger). Start med de nyeste.",
    "billing.one_off": "engangsbeløp",
    "billing.monthly": "per måned",
    "problem.invalid_icc": "ICC-nummeret ble avvist: det må være 19–20 siffer med riktig kontrollsiffer.",
    "problem.already": "Dette er allerede bestilt eller aktivt.",
    "problem.policy": "Ikke tillatt etter bedriftens retningslinjer.",
    "problem.deduction_changed": "Prisen er endret. Last siden på nytt for å se det nye lønnstrekket.",
    "problem.self_service": "Selvbetjening er ikke aktivert. Bekreft telefonnummeret ditt først.",
    "problem.session": "Økten din er utløpt. Last inn siden på nytt og logg på igjen.",
    "problem.network": "Fikk ikke kontakt med mPort. Prøv igjen.",
    "problem.rate_limited": "Du har bestilt mye på kort tid. Vent {seconds} sekunder og prøv igjen.",
    "problem.busy": "Mange bestiller akkurat nå. Ingenting er bestilt; prøv igjen om {seconds} sekunder.",
    "problem.generic": "Noe gikk galt: {detail}",
    "policy.title": "Bedriftens retningslinjer for mobilordningen",
    "policy.intro": (
        "Endringer du gjør i abonnementet kan medføre lønnstrekk i henhold til retningslinjene "
        "for mobilordningen hos {company}. Slik fordeles kostnadene:"
    ),
    "policy.plan_ceiling": (
        "Arbeidsgiver dekker abonnement opp til og med {plan}. Velger du et dyrere abonnement, "
        "trekkes differansen i lønn hver måned."
    ),
    "policy.plan_all": "Arbeidsgiver dekker abonnementet.",
    "policy.col.payer": "Hvem betaler",
    "policy.employer": "Arbeidsgiver",
    "policy.employee_full": "Du (lønnstrekk {amount})",
    "policy.employee_share": "Du betaler {amount} av {price} (lønnstrekk)",
    "policy.not_allowed": "Ikke tillatt",
    "policy.services": "Tjenester og tillegg",
    "policy.plans": "Abonnementer",
    "policy.back": "Tilbake til Abonnement",
    "terminal.title": "Terminal",
    "terminal.text": (
        "Mobiltelefoner (terminaler) bestilles ikke i selvbetjeningen. "
        "Kontakt din mPort administrator for ny eller reparert telefon."
    ),
    "support.title": "Support",
    "support.intro": "Slik bruker du selvbetjeningen i mPort:",
    "support.step1": "Gå til menyen Abonnement.",
    "support.step2": "Nederst er boksen for selvbetjening; klikk på pil ned ved Tilgjengelige tjenester.",
    "support.step3": "Velg ønsket produkt og trykk Bestill, og trykk Ok i bekreftelsen.",
    "support.step4": "Knappen viser Bestilt når bestillingen er fullført.",
    "support.step5": "Har du ikke boksen, er selvbetjening ikke aktivert: klikk på Bekreft telefonnummer.",
    "support.travel": (
        "Ekstra Data gjelder KUN data innenfor Norge. Reise og databruk i utlandet "
        "dekkes ikke av selvbetjeningen."
    ),
    "contact.title": "Kontakt oss",
    "contact.text": "Spørsmål om abonnementet ditt eller mobilordningen? Kontakt din mPort administrator:",
    "contact.none": "Bedriften har ikke registrert noen mPort administrator.",
    "nav.admin.staff": "ANSATTE",
    "nav.admin.log": "ENDRINGSLOGG",
    "admin.staff.title": "Ansatte",
    "admin.staff.intro": (
        "De ansatte i {company}. Velg en ansatt for å rette telefonnummeret, slå selvbetjening av "
        "eller på, eller låse opp etter for mange feil engangskoder."
    ),
    "admin.staff.empty": "Bedriften har ingen ansatte registrert i mPort.",
    "admin.staff.pages": "Flere ansatte",
    "admin.first_page": "Til første side",
    "admin.next_page": "Neste side",
    "admin.bad_page": "Denne lenken er ikke gyldig (lenger). Start på første side.",
    "admin.to_log": "Se endringsloggen",
    "admin.back": "Tilbake til Ansatte",
    "admin.only": "Denne siden er bare for bedriftens mPort administrator.",
    "admin.not_found": "Fant ingen slik ansatt i bedriften din.",
    "admin.employee_number": "Ansattnr. {number}",
    "admin.col.name": "Navn",
    "admin.col.email": "E-post",
    "admin.col.number": "Ansattnummer",
    "admin.col.msisdn": "Telefonnummer",
    "admin.col.plan": "Abonnement",
    "admin.col.self_service": "Selvbetjening",
    "admin.col.verified": "Nummer bekreftet",
    "admin.col.locked": "Låst",
    "admin.col.failures": "Feil engangskoder på rad",
    "admin.col.field": "Hva",
    "admin.col.before": "Før",
    "admin.col.after": "Etter",
    "admin.no_subscription": "Ingen abonnement",
    "admin.self_service.active": "Aktiv",
    "admin.self_service.not_active": "Ikke aktivert",
    "admin.self_service.off": "Slått av",
    "admin.verified.no": "Ikke bekreftet",
    "admin.locked.yes": "Låst",
    "admin.locked.no": "Nei",
    "admin.employee.facts": "Opplysninger",
    "admin.number.heading": "Rett telefonnummer",
    "admin.number.label": "Riktig telefonnummer",
    "admin.number.hint": (
        "Med landskode, f.eks. 4791234567 (8 siffer regnes som norsk nummer). Den ansatte logges ut "
        "og må bekrefte det nye nummeret med engangskode på SMS før selvbetjening virker igjen."
    ),
    "admin.number.submit": "Rett nummer",
    "admin.self_service.heading": "Selvbetjening",
    "admin.self_service.now.active": "Selvbetjening er aktiv: den ansatte kan bestille selv.",
    "admin.self_service.now.not_active": (
        "Selvbetjening er tillatt, men ikke aktivert: den ansatte må først bekrefte telefonnummeret."
    ),
    "admin.self_service.now.off": "Selvbetjening er slått av for den ansatte.",
    "admin.self_service.turn_on": "Slå på selvbetjening",
    "admin.self_service.turn_off": "Slå av selvbetjening",
    "admin.unlock.heading": "Engangskoder",
    "admin.unlock.locked": (
        "{name} har tastet feil engangskode {count} ganger på rad og kan ikke få ny kode før du låser opp."
    ),
    "admin.unlock.not_locked": "Ikke låst. Etter {max} feil engangskoder på rad må du låse opp.",
    "admin.unlock.submit": "Lås opp",
    "admin.confirm.heading": "Bekreft endring",
    "admin.confirm.intro": "Dette endres for {name}:",
    "admin.confirm.ends_sessions": "{name} blir logget ut på alle enheter.",
    "admin.confirm.ok": "Bekreft",
    "admin.confirm.cancel": "Avbryt",
    "admin.confirm.nothing": "Dette endrer ingenting.",
    "admin.saved": "Endringen er lagret.",
    "admin.error.invalid_msisdn": (
        "Telefonnummeret er ikke gyldig: bruk bare siffer, med landskode (f.eks. 4791234567)."
    ),
    "admin.error.msisdn_taken": "En annen ansatt har dette telefonnummeret. Rett det nummeret først.",
    "admin.error.open_orders": (
        "Nummeret har bestillinger som operatøren ikke er ferdig med. Rett nummeret når de er fullført "
        "eller feilet."
    ),
    "admin.error.no_subscription": "Den ansatte har ikke noe abonnement å rette nummeret på.",
    "admin.sms.heading": "Avviste SMS-er",
    "admin.sms.none": "Ingen SMS med engangskode til denne ansatte er avvist.",
    "admin.sms.reason.country_not_allowed": "engangskode til {msisdn} ikke sendt: landet er ikke tillatt",
    "admin.sms.reason.budget_spent": (
        "engangskode til {msisdn} ikke sendt: bedriftens SMS-kvote for dagen er brukt opp"
    ),
    "admin.field.msisdn": "Telefonnummer",
    "admin.field.rules": "Regler",
    "admin.field.plan_covered_up_to": "Arbeidsgiver dekker abonnement opp til",
    "admin.field.wage_types": "Lønnsarter",
    "nav.admin.policy": "RETNINGSLINJER",
    "admin.policy.title": "Retningslinjer for mobilordningen",
    "admin.policy.intro": (
        "Her bestemmer du hvem som betaler hva. Det den ansatte betaler, trekkes i lønn med den "
        "ansattes samtykke ved bestilling."
    ),
    "admin.policy.saved": "Retningslinjene er lagret.",
    "admin.policy.problems": "Retningslinjene ble ikke lagret:",
    "admin.policy.services": "Tjenester og tillegg",
    "admin.policy.col.category": "Tjenester",
    "admin.policy.col.percent": "Andel i prosent",
    "admin.policy.col.fixed": "Fast beløp (kr)",
    "admin.policy.choice.employer": "Arbeidsgiver",
    "admin.policy.choice.employee": "Den ansatte betaler alt",
    "admin.policy.choice.percent": "Den ansatte betaler en andel (prosent)",
    "admin.policy.choice.fixed": "Den ansatte betaler et fast beløp",
    "admin.policy.choice.not_allowed": "Ikke tillatt",
    "admin.policy.ceiling": "Arbeidsgiver dekker abonnement opp til",
    "admin.policy.ceiling.all": "Alle abonnementer",
    "admin.policy.wage_types": "Lønnsarter",
    "admin.policy.wage.one_off_addon": "Engangstillegg (Ekstra Data)",
    "admin.policy.wage.monthly_addon": "Månedlige tillegg",
    "admin.policy.wage.plan_difference": "Mellomlegg for abonnement",
    "admin.policy.wage.sim": "SIM",
    "admin.policy.new_orders_only": (
        "Endringer gjelder nye bestillinger; bestillinger som er lagt inn, beholder sin pris."
    ),
    "admin.policy.save": "Lagre retningslinjene",
    "admin.policy.error.kr": "Et fast beløp skrives i kroner, for eksempel 25,00.",
    "admin.policy.error.percent": "En andel i prosent er et helt tall fra 0 til 100.",
    "admin.policy.error.choice": "Velg hvem som betaler.",
    "admin.policy.error.invalid": "Retningslinjene er ikke gyldige.",
    "admin.field.self_service_allowed": "Selvbetjening tillatt",
    "admin.field.self_service_active": "Selvbetjening aktiv",
    "admin.field.phone_verified_at": "Nummer bekreftet",
    "admin.field.verification_failures": "Feil engangskoder på rad",
    "admin.value.true": "ja",
    "admin.value.false": "nei",
    "admin.value.none": "–",
    "admin.log.title": "Endringslogg",
    "admin.log.intro": "Alle endringer en mPort administrator har gjort på bedriftens ansatte, nyeste først.",
    "admin.log.col.at": "Tidspunkt",
    "admin.log.col.actor": "Utført av",
    "admin.log.col.subject": "Ansatt",
    "admin.log.col.change": "Endring",
    "admin.log.change": "{field}: {before} → {after}",
    "admin.log.empty": "Ingen endringer ennå.",
    "admin.log.pages": "Flere endringer",
    "nav.admin.payroll": "LØNNSTREKK",
    "home.to_deductions": "Se Mine lønnstrekk",
    "sub.my_deductions": "Mine lønnstrekk",
    "deductions.title": "Mine lønnstrekk",
    "deductions.intro": (
        "Dette trekkes i lønnen din for endringer du har bestilt, i henhold til retningslinjene for "
        "mobilordningen."
    ),
    "deductions.empty": "Du har ingen lønnstrekk.",
    "deductions.period": "Lønnsperiode {period}",
    "deductions.sum": "Sum lønnstrekk {period}",
    "deductions.col.text": "Hva",
    "deductions.col.kind": "Type",
    "deductions.col.order": "Bestilling",
    "deductions.col.amount": "Beløp",
    "deductions.to_order": "Se bestillingen",
    "deductions.kind.one_off": "Engangstrekk",
    "deductions.kind.monthly": "Månedlig trekk",
    "deductions.kind.reversal": "Tilbakeført",
    "payroll.title": "Lønnstrekk",
    "payroll.intro": "Lønnstrekk for de ansatte i {company}, per lønnsperiode.",
    "payroll.periods": "Lønnsperioder",
    "payroll.period": "Lønnsperiode {period}",
    "payroll.no_periods": "Ingen lønnsperioder ennå.",
    "payroll.pick": "Lønnsperiode (ÅÅÅÅ-MM)",
    "payroll.show": "Vis",
    "payroll.unavailable": (
        "Lønnssystemet svarer ikke akkurat nå, så periodenes status vises ikke. Prøv igjen om litt."
    ),
    "payroll.col.period": "Periode",
    "payroll.col.status": "Status",
    "payroll.col.lines": "Linjer",
    "payroll.col.total": "Sum",
    "payroll.col.employee": "Ansatt",
    "payroll.col.number": "Ansattnummer",
    "payroll.col.lines_text": "Lønnstrekk",
    "payroll.status.open": "Åpen",
    "payroll.status.closed": "Lukket",
    "payroll.closed_at": "({at})",
    "payroll.sum": "Sum for perioden",
    "payroll.empty": "Ingen lønnstrekk i {period}.",
    "payroll.downloads": "Last ned til lønnssystemet",
    "payroll.download.visma": "Last ned Visma",
    "payroll.download.tripletex": "Last ned Tripletex",
    "payroll.download.json": "Last ned JSON",
    "payroll.close.submit": "Lukk periode",
    "payroll.close.confirm_heading": "Lukk periode",
    "payroll.close.confirm": (
        "Vil du lukke lønnsperioden {period}? Månedlige trekk for perioden lages, og perioden kan "
        "ikke endres etterpå: det som kommer senere, havner i neste åpne periode."
    ),
    "payroll.close.ok": "Ja, lukk perioden",
    "payroll.closed_now": "Lønnsperioden {period} er lukket ({lines} månedlige trekk laget).",
    "payroll.error.unavailable": "Lønnssystemet svarer ikke, så perioden er ikke lukket. Prøv igjen om litt.",
    "payroll.error.bad_period": "Det er ikke en gyldig lønnsperiode (skriv ÅÅÅÅ-MM).",
    "admin.field.period": "Lønnsperiode",
    "admin.field.status": "Status",
    "admin.field.recurring_lines_generated": "Månedlige trekk laget",
    "admin.log.older": "Eldre endringer",
    "admin.log.newest": "Nyeste endringer",
    "error.title": "Noe gikk galt",
    "error.not_found": "Siden finnes ikke.",
    "error.back": "Til forsiden",
    "rate_limited.title": "For mange forsøk",
    "rate_limited.sign_in": (
        "Det har vært for mange innloggingsforsøk fra adressen din. Vent {seconds} sekunder og prøv igjen."
    ),
}

_EN: dict[str, str] = {
    "site.skip": "Skip to content",
    "nav.label": "Main menu",
    "nav.home": "HOME",
    "nav.subscription": "SUBSCRIPTION",
    "nav.terminal": "DEVICES",
    "nav.support": "SUPPORT",
    "nav.contact": "CONTACT US",
    "lang.other": "Norsk",
    "lang.other.code": "nb",
    "auth.sign_out": "Sign out",
    "auth.signed_in_as": "Signed in as {name}",
    "login.title": "Sign in to mPort",
    "login.intro": "Sign in with your work account to see and change your mobile subscription.",
    "login.use_work_account": "Use work account",
    "login.dev.title": "Development sign-in",
    "login.dev.note": "Local mode only: sign in as one of the demo people.",
    "login.dev.as": "Sign in as {name}",
    "login.dev.admin": "mPort administrator",
    "login.dev.self_service_off": "self-service not activated",
    "login.failed.title": "Sign-in failed",
    "login.failed.not_configured": "Sign-in with a work account is not set up for this portal yet.",
    "login.failed.unknown_user": (
        "We found no employee with the e-mail address {email} in mPort. Contact your mPort administrator."
    ),
    "login.failed.no_email": "Your work account gave no e-mail address, so we cannot tell who you are.",
    "login.failed.expired": (
        "The sign-in took too long, or was started in another tab or browser. Please try again."
    ),
    "login.failed.invalid_response": "The answer from the sign-in service could not be verified. Try again.",
    "login.failed.provider_error": "The sign-in service refused the sign-in ({detail}).",
    "login.failed.misconfigured": "Sign-in is not set up correctly – contact the mPort administrator.",
    "login.failed.unverified_email": (
        "The sign-in service has not verified the e-mail address {email}, so we cannot link your work "
        "account to an employee. Contact the mPort administrator."
    ),
    "login.failed.account_taken": (
        "The employee with the e-mail address {email} is already linked to another work account. "
        "Contact the mPort administrator."
    ),
    "login.try_again": "Try again",
    "login.notice.signed_out": "You are signed out.",
    "login.notice.idle": "You were signed out after a while without activity. Sign in again to continue.",
    "login.notice.max_age": "Your session has expired. Sign in again to continue.",
    "login.notice.ended": "Your session has ended. Sign in again to continue.",
    "home.title": "Home",
    "home.greeting": "Hello, {name}",
    "home.company": "Your mobile subscription is provided by {company}.",
    "home.to_subscription": "Go to Subscription",
    "home.to_orders": "See My orders",
    "sub.title": "Subscription",
    "sub.number": "Phone number",
    "sub.plan": "Subscription",
    "sub.you_pay": "You pay",
    "sub.no_subscription": "You have no mobile subscription registered in mPort.",
    "sub.box_label": "Self-service",
    "sub.intro": (
        "Here you can order services and add-ons for your subscription. "
        "Some services may lead to a salary deduction. See the company's policy."
    ),
    "sub.policy_link": "(Policy)",
    "sub.not_active": "Self-service is not activated for you yet. Confirm your phone number first:",
    "sub.confirm_number": "Confirm phone number",
    "sub.row.plan": "Subscription: {plan}",
    "sub.row.sims": "My SIM cards",
    "sub.row.active": "My active services",
    "sub.row.services": "Available services",
    "sub.row.plans": "Available subscriptions",
    "sub.active.empty": "No active services.",
    "sub.my_orders": "My orders",
    "sim.main": "Main SIM card",
    "sim.label.Sim hovedkort": "Main SIM card",
    "sim.label.Nytt SIM (sendt)": "New SIM (shipped)",
    "sim.status.active": "Active",
    "sim.status.ordered": "Shipped, not activated",
    "sim.icc": "ICC number",
    "sim.icc.none": "ICC not registered",
    "sim.icc.hint": "19–20 digits, printed on the SIM card.",
    "sim.icc.length": "The ICC number must be 19 or 20 digits.",
    "sim.icc.check": "The ICC number has a wrong check digit. Check that you typed it correctly.",
    "sim.delivery_name": "Recipient's name",
    "sim.delivery_address": "Delivery address",
    "sim.required": "Fill in this field.",
    "sim.activate": "Activate new SIM",
    "sim.order": "Order SIM",
    "col.product": "Product",
    "col.price": "Price",
    "col.you_pay": "You pay",
    "charge.deduction": "Salary deduction: {amount}",
    "charge.per_month": "{amount} per month",
    "charge.employer": "Paid by your employer",
    "product.not_allowed": "Not allowed by the company's policy",
    "product.norway_only": "This applies ONLY to data within Norway",
    "product.last_failed": "The last order failed: {reason}",
    "product.expected": "Expected to be done {date}",
    "plan.current": "Your subscription",
    "button.order": "Order",
    "button.ordered": "Ordered",
    "button.ordering": "Ordering …",
    "button.with_carrier": "In progress with the operator",
    "dialog.title": "Confirm order",
    "dialog.product": "Product:",
    "dialog.msisdn": "Added to the following msisdn:",
    "dialog.deduction": "This means a salary deduction: {amount}.",
    "dialog.ok": "Ok",
    "end.title": "End service",
    "end.question": (
        "Do you want to end {name}? The service is removed from your subscription, and its salary "
        "deduction stops from the next pay period."
    ),
    "end.button": "End",
    "end.ending": "Ending …",
    "end.received": "Ending {name} is received.",
    "end.completed": "{name} has ended.",
    "end.failed": "Ending {name} failed: {reason}",
    "dialog.cancel": "Cancel",
    "order.received": "Your order for {name} is received.",
    "order.completed": "{name} is ordered.",
    "order.failed": "The order for {name} failed: {reason}",
    "order.failed_short": "The order failed: {reason}",
    "order.with_carrier": "Your order for {name} is in progress with the operator.",
    "order.with_carrier_expected": (
        "Your order for {name} is in progress with the operator, expected to be done {date}."
    ),
    "order.expected": "expected to be done {date}",
    "failure.carrier_deadline_passed": (
        "The operator did not finish the order in time. You will not be charged anything."
    ),
    "failure.carrier_unreachable": (
        "We could not reach the operator in time. You will not be charged anything."
    ),
    "status.received": "Received",
    "status.submitted": "In progress with the operator",
    "status.completed": "Ordered",
    "status.failed": "Failed",
    "verify.title": "Confirm phone number for {name}",
    "verify.registered": "Registered phone number",
    "verify.intro": "Click the button below to receive a one-time code by SMS to confirm",
    "verify.send": "Send one-time code by SMS",
    "verify.send_again": "Send a new one-time code by SMS",
    "verify.wrong_number": "If the number is wrong, please contact your mPort administrator.",
    "verify.code_label": "Enter the one-time code received by SMS",
    "verify.code_hint": "6 digits. The code is valid until {time}.",
    "verify.confirm": "Confirm phone number",
    "verify.confirmed": "Your phone number is confirmed.",
    "verify.ok": "Ok",
    "verify.not_allowed_by_admin": (
        "Your mPort administrator has switched self-service off for you, "
        "so the self-service box is not shown."
    ),
    "verify.delivery.requested": "Sending the one-time code …",
    "verify.delivery.sent": "The SMS with the one-time code has been sent.",
    "verify.delivery.delivered": "The SMS with the one-time code has been delivered to your phone.",
    "verify.delivery.failed": "The SMS with the one-time code did not arrive: {reason}",
    "verify.failed.rejected": "the SMS service refused the message.",
    "verify.failed.undelivered": "the message could not be delivered to the phone.",
    "verify.failed.expired": "the code expired before the SMS could be sent.",
    "verify.failed.not_allowed": "we do not send SMS to numbers in this country.",
    "verify.failed.ask_again": "Ask for a new code, or contact your mPort administrator.",
    "verify.tries_left": "{tries} tries left.",
    "verify.local": 'Local mode: the SMS messages "sent" can be read at the SMS simulator:',
    "verify.problem.wrong_code": "Wrong code. You have {tries} tries left with this code.",
    "verify.problem.too_many_tries": (
        "Wrong code too many times: the code no longer works. Ask for a new code."
    ),
    "verify.problem.expired": "The code has expired. Ask for a new code.",
    "verify.problem.replaced": "A newer code has been sent. Use the newest code.",
    "verify.problem.dead": "The code was typed wrong too many times. Ask for a new code.",
    "verify.problem.used": "The code has been used already.",
    "verify.problem.number_changed": (
        "Your phone number has changed since the code was sent. Ask for a new code."
    ),
    "verify.problem.too_many_codes": "You have asked for too many codes. Try again in {wait}.",
    "verify.problem.locked": (
        "Too many wrong codes in a row. Your mPort administrator must unlock confirmation for you."
    ),
    "verify.problem.country": (
        "We do not send SMS to numbers in this country. Contact your mPort administrator."
    ),
    "verify.problem.budget": (
        "Your company has used up today's SMS codes. Try again in {wait}, "
        "or contact your mPort administrator."
    ),
    "verify.problem.busy": "A code is already on its way. Use the code that arrives.",
    "verify.problem.generic": "Something went wrong. Try again.",
    "orders.title": "My orders",
    "orders.ending": "End {name}",
    "orders.empty": "You have no orders yet.",
    "orders.col.date": "Date",
    "orders.col.product": "Product",
    "orders.col.status": "Status",
    "orders.col.charge": "Salary deduction",
    "orders.none": "–",
    "orders.older": "Older orders",
    "orders.newest": "Newest orders",
    "orders.not_found": "There is no such order among your orders.",
    "orders.pages": "More orders",
    "orders.bad_page": "This link to your orders is not valid (any more). Start from your newest orders.",
    "billing.one_off": "one-off",
    "billing.monthly": "per month",
    "problem.invalid_icc": "The ICC number was refused: it must be 19–20 digits with a valid check digit.",
    "problem.already": "This is already ordered or active.",
    "problem.policy": "Not allowed by the company's policy.",
    "problem.deduction_changed": "The price has changed. Reload the page to see the new salary deduction.",
    "problem.self_service": "Self-service is not activated. Confirm your phone number first.",
    "problem.session": "Your session has expired. Reload the page and sign in again.",
    "problem.network": "Could not reach mPort. Please try again.",
    "problem.rate_limited": "You have ordered a lot in a short time. Wait {seconds} seconds and try again.",
    "problem.busy": "Many are ordering right now. Nothing was ordered; try again in {seconds} seconds.",
    "problem.generic": "Something went wrong: {detail}",
    "policy.title": "The company's mobile policy",
    "policy.intro": (
        "Changes you make to your subscription may lead to a salary deduction under the mobile "
        "policy of {company}. This is who pays what:"
    ),
    "policy.plan_ceiling": (
        "Your employer pays for subscriptions up to and including {plan}. If you choose a more "
        "expensive one, the difference is deducted from your salary every month."
    ),
    "policy.plan_all": "Your employer pays for the subscription.",
    "policy.col.payer": "Who pays",
    "policy.employer": "Employer",
    "policy.employee_full": "You (salary deduction {amount})",
    "policy.employee_share": "You pay {amount} of {price} (salary deduction)",
    "policy.not_allowed": "Not allowed",
    "policy.services": "Services and add-ons",
    "policy.plans": "Subscriptions",
    "policy.back": "Back to Subscription",
    "terminal.title": "Devices",
    "terminal.text": (
        "Mobile phones (devices) are not ordered through self-service. "
        "Contact your mPort administrator for a new or repaired phone."
    ),
    "support.title": "Support",
    "support.intro": "How to use self-service in mPort:",
    "support.step1": "Open the Subscription menu.",
    "support.step2": "At the bottom is the self-service box; click the arrow at Available services.",
    "support.step3": "Pick a product, press Order, and press Ok in the confirmation.",
    "support.step4": "The button reads Ordered once the order is completed.",
    "support.step5": "If the box is missing, self-service is not activated: click Confirm phone number.",
    "support.travel": (
        "Extra data applies ONLY to data within Norway. Travel and data use abroad are not "
        "covered by self-service."
    ),
    "contact.title": "Contact us",
    "contact.text": (
        "Questions about your subscription or the mobile policy? Contact your mPort administrator:"
    ),
    "contact.none": "The company has not registered an mPort administrator.",
    "nav.admin.staff": "EMPLOYEES",
    "nav.admin.log": "AUDIT LOG",
    "admin.staff.title": "Employees",
    "admin.staff.intro": (
        "The employees of {company}. Pick an employee to correct their phone number, switch "
        "self-service off or on, or unlock them after too many wrong one-time codes."
    ),
    "admin.staff.empty": "The company has no employees registered in mPort.",
    "admin.staff.pages": "More employees",
    "admin.first_page": "To the first page",
    "admin.next_page": "Next page",
    "admin.bad_page": "This link is not valid (any more). Start on the first page.",
    "admin.to_log": "See the audit log",
    "admin.back": "Back to Employees",
    "admin.only": "This page is for the company's mPort administrator only.",
    "admin.not_found": "There is no such employee in your company.",
    "admin.employee_number": "Employee no. {number}",
    "admin.col.name": "Name",
    "admin.col.email": "E-mail",
    "admin.col.number": "Employee number",
    "admin.col.msisdn": "Phone number",
    "admin.col.plan": "Plan",
    "admin.col.self_service": "Self-service",
    "admin.col.verified": "Number confirmed",
    "admin.col.locked": "Locked",
    "admin.col.failures": "Wrong one-time codes in a row",
    "admin.col.field": "What",
    "admin.col.before": "Before",
    "admin.col.after": "After",
    "admin.no_subscription": "No subscription",
    "admin.self_service.active": "Active",
    "admin.self_service.not_active": "Not activated",
    "admin.self_service.off": "Switched off",
    "admin.verified.no": "Not confirmed",
    "admin.locked.yes": "Locked",
    "admin.locked.no": "No",
    "admin.employee.facts": "Details",
    "admin.number.heading": "Correct the phone number",
    "admin.number.label": "Correct phone number",
    "admin.number.hint": (
        "With the country code, e.g. 4791234567 (8 digits are taken as a Norwegian number). The "
        "employee is signed out and must confirm the new number with a one-time code by SMS."
    ),
    "admin.number.submit": "Correct number",
    "admin.self_service.heading": "Self-service",
    "admin.self_service.now.active": "Self-service is active: the employee can order themselves.",
    "admin.self_service.now.not_active": (
        "Self-service is allowed but not activated: the employee must confirm the phone number first."
    ),
    "admin.self_service.now.off": "Self-service is switched off for the employee.",
    "admin.self_service.turn_on": "Switch self-service on",
    "admin.self_service.turn_off": "Switch self-service off",
    "admin.unlock.heading": "One-time codes",
    "admin.unlock.locked": (
        "{name} has typed a wrong one-time code {count} times in a row and gets no new code until you unlock."
    ),
    "admin.unlock.not_locked": "Not locked. After {max} wrong one-time codes in a row you must unlock.",
    "admin.unlock.submit": "Unlock",
    "admin.confirm.heading": "Confirm the change",
    "admin.confirm.intro": "This changes for {name}:",
    "admin.confirm.ends_sessions": "{name} is signed out on every device.",
    "admin.confirm.ok": "Confirm",
    "admin.confirm.cancel": "Cancel",
    "admin.confirm.nothing": "This changes nothing.",
    "admin.saved": "The change is saved.",
    "admin.error.invalid_msisdn": (
        "The phone number is not valid: digits only, with the country code (e.g. 4791234567)."
    ),
    "admin.error.msisdn_taken": "Another employee has this phone number. Correct that number first.",
    "admin.error.open_orders": (
        "The number has orders the carrier has not finished. Correct the number once they have "
        "completed or failed."
    ),
    "admin.error.no_subscription": "The employee has no subscription whose number to correct.",
    "admin.sms.heading": "Refused SMS",
    "admin.sms.none": "No SMS with a one-time code to this employee has been refused.",
    "admin.sms.reason.country_not_allowed": "one-time code to {msisdn} not sent: the country is not allowed",
    "admin.sms.reason.budget_spent": (
        "one-time code to {msisdn} not sent: the company's SMS budget for the day is spent"
    ),
    "admin.field.msisdn": "Phone number",
    "admin.field.rules": "Rules",
    "admin.field.plan_covered_up_to": "Employer covers plans up to",
    "admin.field.wage_types": "Wage types",
    "nav.admin.policy": "POLICY",
    "admin.policy.title": "The mobile policy",
    "admin.policy.intro": (
        "Here you decide who pays for what. What the employee pays is deducted from their salary, "
        "with their consent when they order."
    ),
    "admin.policy.saved": "The policy is saved.",
    "admin.policy.problems": "The policy was not saved:",
    "admin.policy.services": "Services and add-ons",
    "admin.policy.col.category": "Services",
    "admin.policy.col.percent": "Share in percent",
    "admin.policy.col.fixed": "Fixed amount (NOK)",
    "admin.policy.choice.employer": "Employer",
    "admin.policy.choice.employee": "The employee pays in full",
    "admin.policy.choice.percent": "The employee pays a share (percent)",
    "admin.policy.choice.fixed": "The employee pays a fixed amount",
    "admin.policy.choice.not_allowed": "Not allowed",
    "admin.policy.ceiling": "Employer covers plans up to",
    "admin.policy.ceiling.all": "All plans",
    "admin.policy.wage_types": "Wage types",
    "admin.policy.wage.one_off_addon": "One-off add-ons (Ekstra Data)",
    "admin.policy.wage.monthly_addon": "Monthly add-ons",
    "admin.policy.wage.plan_difference": "Plan difference",
    "admin.policy.wage.sim": "SIM",
    "admin.policy.new_orders_only": "Changes apply to new orders; orders already placed keep their price.",
    "admin.policy.save": "Save the policy",
    "admin.policy.error.kr": "A fixed amount is written in kroner, for example 25.00.",
    "admin.policy.error.percent": "A share in percent is a whole number from 0 to 100.",
    "admin.policy.error.choice": "Choose who pays.",
    "admin.policy.error.invalid": "The policy is not valid.",
    "admin.field.self_service_allowed": "Self-service allowed",
    "admin.field.self_service_active": "Self-service active",
    "admin.field.phone_verified_at": "Number confirmed",
    "admin.field.verification_failures": "Wrong one-time codes in a row",
    "admin.value.true": "yes",
    "admin.value.false": "no",
    "admin.value.none": "–",
    "admin.log.title": "Audit log",
    "admin.log.intro": "Every change an mPort administrator made to the company's employees, newest first.",
    "admin.log.col.at": "When",
    "admin.log.col.actor": "By",
    "admin.log.col.subject": "Employee",
    "admin.log.col.change": "Change",
    "admin.log.change": "{field}: {before} → {after}",
    "admin.log.empty": "No changes yet.",
    "admin.log.pages": "More changes",
    "nav.admin.payroll": "DEDUCTIONS",
    "home.to_deductions": "See My salary deductions",
    "sub.my_deductions": "My salary deductions",
    "deductions.title": "My salary deductions",
    "deductions.intro": (
        "What is deducted from your salary for changes you ordered, according to the company's mobile policy."
    ),
    "deductions.empty": "You have no salary deductions.",
    "deductions.period": "Pay period {period}",
    "deductions.sum": "Total deducted {period}",
    "deductions.col.text": "What",
    "deductions.col.kind": "Kind",
    "deductions.col.order": "Order",
    "deductions.col.amount": "Amount",
    "deductions.to_order": "See the order",
    "deductions.kind.one_off": "One-off",
    "deductions.kind.monthly": "Monthly",
    "deductions.kind.reversal": "Reversed",
    "payroll.title": "Salary deductions",
    "payroll.intro": "Salary deductions of the employees of {company}, per pay period.",
    "payroll.periods": "Pay periods",
    "payroll.period": "Pay period {period}",
    "payroll.no_periods": "No pay periods yet.",
    "payroll.pick": "Pay period (YYYY-MM)",
    "payroll.show": "Show",
    "payroll.unavailable": (
        "The payroll system does not answer just now, so the periods' status is not shown. Try again soon."
    ),
    "payroll.col.period": "Period",
    "payroll.col.status": "Status",
    "payroll.col.lines": "Lines",
    "payroll.col.total": "Total",
    "payroll.col.employee": "Employee",
    "payroll.col.number": "Employee number",
    "payroll.col.lines_text": "Deductions",
    "payroll.status.open": "Open",
    "payroll.status.closed": "Closed",
    "payroll.closed_at": "({at})",
    "payroll.sum": "Total for the period",
    "payroll.empty": "No salary deductions in {period}.",
    "payroll.downloads": "Download for the payroll system",
    "payroll.download.visma": "Download Visma",
    "payroll.download.tripletex": "Download Tripletex",
    "payroll.download.json": "Download JSON",
    "payroll.close.submit": "Close period",
    "payroll.close.confirm_heading": "Close period",
    "payroll.close.confirm": (
        "Close the pay period {period}? Its monthly deductions are made and the period cannot change "
        "afterwards: anything later lands in the next open period."
    ),
    "payroll.close.ok": "Yes, close the period",
    "payroll.closed_now": "The pay period {period} is closed ({lines} monthly deductions made).",
    "payroll.error.unavailable": (
        "The payroll system does not answer, so the period is not closed. Try again soon."
    ),
    "payroll.error.bad_period": "That is not a valid pay period (write YYYY-MM).",
    "admin.field.period": "Pay period",
    "admin.field.status": "Status",
    "admin.field.recurring_lines_generated": "Monthly deductions made",
    "admin.log.older": "Older changes",
    "admin.log.newest": "Newest changes",
    "error.title": "Something went wrong",
    "error.not_found": "This page does not exist.",
    "error.back": "To the home page",
    "rate_limited.title": "Too many attempts",
    "rate_limited.sign_in": (
        "There have been too many sign-in attempts from your address. Wait {seconds} seconds and try again."
    ),
}

MESSAGES: Final[dict[Lang, dict[str, str]]] = {"nb": _NB, "en": _EN}

# The words the page script needs (statuses, dialog texts, error messages), sent along as JSON.
_JS_GROUPS = {
    "button",
    "order",
    "orders",
    "status",
    "problem",
    "sim",
    "dialog",
    "end",
    "charge",
    "product",
    "failure",
    "verify",
}
JS_KEYS: Final = tuple(key for key in _NB if key.split(".")[0] in _JS_GROUPS)


def pick_language(request: Request) -> tuple[Lang, bool]:
    """The language for this request, and whether it was chosen now (so the choice is remembered)."""
    asked = request.query_params.get(LANG_QUERY)
    if asked in MESSAGES:
        return _as_lang(asked), True
    remembered = request.cookies.get(LANG_COOKIE)
    if remembered in MESSAGES:
        return _as_lang(remembered), False
    return DEFAULT_LANG, False


def _as_lang(value: str | None) -> Lang:
    return "en" if value == "en" else "nb"


def format_kr(ore: int, lang: Lang) -> str:
    """Money the Norwegian way ("1 249,00 kr"), or "NOK 1,249.00" in English."""
    sign = "-" if ore < 0 else ""
    kroner, rest = divmod(abs(ore), 100)
    if lang == "nb":
        grouped = f"{kroner:,}".replace(",", "\u00a0")
        return f"{sign}{grouped},{rest:02d} kr"
    return f"NOK {sign}{kroner:,}.{rest:02d}"


@dataclass(frozen=True, slots=True)
class Translator:
    """`t("key", name=...)` in templates and views; an unknown key shows itself, so a gap is visible."""

    lang: Lang

    def __call__(self, key: str, /, **values: object) -> str:
        text = MESSAGES[self.lang].get(key) or _NB.get(key) or key
        return text.format(**values) if values else text

    def kr(self, ore: int) -> str:
        return format_kr(ore, self.lang)

    def js_strings(self) -> dict[str, str]:
        return {key: self(key) for key in JS_KEYS}
